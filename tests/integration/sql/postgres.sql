CREATE EXTENSION IF NOT EXISTS citext;
CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
CREATE DOMAIN percent AS numeric(5,2) CHECK (VALUE BETWEEN 0 AND 100);

CREATE TABLE all_types (
    id bigint PRIMARY KEY,
    c_smallint smallint,
    c_int integer,
    c_bigint bigint,
    c_numeric numeric(12,2),
    c_numeric_38_10 numeric(38,10),
    c_numeric_free numeric,
    c_real real,
    c_double double precision,
    c_bool boolean,
    c_text text,
    c_varchar varchar(20),
    c_char char(5),
    c_uuid uuid,
    c_citext citext,
    c_enum mood,
    c_percent percent,
    c_date date,
    c_time time,
    c_ts timestamp,
    c_tstz timestamptz,
    c_interval interval,
    c_json json,
    c_jsonb jsonb,
    c_bytea bytea,
    c_int_arr integer[],
    c_text_arr text[],
    c_inet inet,
    c_cidr cidr,
    c_tsvector tsvector,
    created_at timestamptz,
    updated_at timestamptz NOT NULL
);
CREATE INDEX all_types_updated_at ON all_types (updated_at);
INSERT INTO all_types VALUES (
    1, -32768, 2147483647, 9223372036854775807, 1234567890.12,
    1234567890123456789012345678.0123456789, 123456789012345678901234567890.1234567890,
    1.5, 3.141592653589793, true, 'héllo, wörld', 'varchar', 'ab', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11',
    'CaseLess', 'happy', 99.50, '2024-02-29', '23:59:59.999999', '2024-02-29 12:34:56.789012',
    '2024-02-29 12:34:56.123456+02', '1 year 2 mons 3 days 04:05:06.5', '{"a": [1, 2.50, "x"]}',
    '{"b": {"c": null}, "a": 1}', '\x00ff10', '{1,2,NULL,4}', '{"a","b c",NULL}', '192.168.1.1', '10.0.0.0/8',
    'quick brown fox', '2024-01-01 00:00:00+00', '2024-03-01 10:00:00.000001+00'
);
INSERT INTO all_types (id, updated_at) VALUES (2, '2024-03-02 00:00:00+00');

CREATE SCHEMA "Sales Data";
CREATE TABLE "Sales Data"."Order Items" (
    "Item ID" integer PRIMARY KEY,
    "Order Date" date NOT NULL,
    "select" integer,
    "from" text,
    "Quote""d" text
);
INSERT INTO "Sales Data"."Order Items" VALUES (1, '2024-05-01', 7, 'web', 'it''s'), (2, '2024-05-02', NULL, NULL, NULL);

CREATE TABLE no_pk (name text, happened_on date);
INSERT INTO no_pk VALUES ('b', '2024-01-02'), ('a', '2024-01-01');

CREATE TABLE composite_pk (
    region text NOT NULL,
    order_no integer NOT NULL,
    amount numeric(10,2),
    modified_at timestamp NOT NULL,
    PRIMARY KEY (region, order_no)
);
INSERT INTO composite_pk VALUES ('us', 2, 20.00, '2024-01-02 00:00:00'), ('eu', 1, 10.50, '2024-01-01 00:00:00');

CREATE TABLE unique_key_only (code text NOT NULL, label text, created_at timestamp);
CREATE UNIQUE INDEX unique_key_only_code ON unique_key_only (code);
INSERT INTO unique_key_only VALUES ('B', 'second', NULL), ('A', 'first', '2024-01-01 00:00:00');

CREATE TABLE empty_table (id integer PRIMARY KEY, note text);

CREATE VIEW v_all_types AS SELECT id, c_numeric, updated_at FROM all_types;
