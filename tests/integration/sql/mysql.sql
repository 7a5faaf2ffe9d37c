SET SESSION sql_mode = '';
CREATE TABLE all_types (
    id int NOT NULL PRIMARY KEY,
    c_bool tinyint(1),
    c_tinyint tinyint,
    c_smallint_u smallint unsigned,
    c_mediumint mediumint,
    c_int int,
    c_int_u int unsigned,
    c_bigint bigint,
    c_bigint_u bigint unsigned,
    c_decimal decimal(12,2),
    c_decimal_wide decimal(65,30),
    c_float float,
    c_double double,
    c_char char(5),
    c_varchar varchar(20),
    c_text text,
    c_enum enum('small','large'),
    c_set set('x','y','z'),
    c_date date,
    c_datetime datetime(6),
    c_timestamp timestamp(6) NULL DEFAULT NULL,
    c_time time(6),
    c_year year,
    c_json json,
    c_blob blob,
    c_binary binary(4),
    c_bit1 bit(1),
    c_bit8 bit(8),
    updated_at datetime(6) NOT NULL,
    KEY all_types_updated_at (updated_at)
) DEFAULT CHARSET = utf8mb4;
INSERT INTO all_types VALUES (
    1, 1, -128, 65535, -8388608, -2147483648, 4294967295, -9223372036854775808, 18446744073709551615,
    1234567890.12, 12345678901234567890123456789012345.123456789012345678901234567890,
    1.5, 3.141592653589793, 'ab', 'varchar', 'héllo, wörld', 'large', 'x,z',
    '2024-02-29', '2024-02-29 12:34:56.789012', '2024-02-29 10:34:56.123456', '-838:59:59.000000', 2024,
    '{"a": [1, 2.50, "x"]}', X'00FF10', X'01020304', b'1', b'10100101', '2024-03-01 10:00:00.000001'
);
INSERT INTO all_types (id, c_date, c_datetime, updated_at) VALUES (2, '0000-00-00', '0000-00-00 00:00:00', '2024-03-02 00:00:00');

CREATE TABLE `Order Items` (
    `Item ID` int NOT NULL PRIMARY KEY,
    `Order Date` date NOT NULL,
    `select` int,
    `from` text,
    `Back``tick` text
);
INSERT INTO `Order Items` VALUES (1, '2024-05-01', 7, 'web', 'it''s'), (2, '2024-05-02', NULL, NULL, NULL);

CREATE TABLE no_pk (name text, happened_on date);
INSERT INTO no_pk VALUES ('b', '2024-01-02'), ('a', '2024-01-01');

CREATE TABLE composite_pk (
    region varchar(10) NOT NULL,
    order_no int NOT NULL,
    amount decimal(10,2),
    modified_at datetime NOT NULL,
    PRIMARY KEY (region, order_no)
);
INSERT INTO composite_pk VALUES ('us', 2, 20.00, '2024-01-02 00:00:00'), ('eu', 1, 10.50, '2024-01-01 00:00:00');

CREATE TABLE unique_key_only (code varchar(10) NOT NULL, label text, created_at datetime, UNIQUE KEY (code));
INSERT INTO unique_key_only VALUES ('B', 'second', NULL), ('A', 'first', '2024-01-01 00:00:00');

CREATE TABLE empty_table (id int PRIMARY KEY, note text);

CREATE VIEW v_all_types AS SELECT id, c_decimal, updated_at FROM all_types;
