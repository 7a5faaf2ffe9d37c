"""BigQuery SQL text: the one place an identifier is quoted.

Identifiers come from a catalog (the source's or BigQuery's), never from request text; quoted here,
any name stays one identifier: a backtick or backslash in it is escaped as GoogleSQL reads them.
"""


def quote(name: str) -> str:
    return "`" + name.replace("\\", "\\\\").replace("`", "\\`") + "`"


def table_path(project: str, dataset: str, table: str) -> str:
    return ".".join(quote(part) for part in (project, dataset, table))
