"""Cloud Functions entry points: parse the request, call one library function, answer JSON.

Each is deployed with its own --entry-point; all share the etlwizard library packaged beside this file.
"""

from functools import cache

import functions_framework

from etlwizard import preview
from etlwizard.api import respond
from etlwizard.config import Settings
from etlwizard.model import require_object, require_text
from etlwizard.stack import Stack


@cache
def _stack() -> Stack:
    return Stack(Settings.from_env())


@functions_framework.http
def preview_table(request):
    """POST {connection_id, schema_name, table_name} -> the table's columns, sample rows and counts."""

    def call():
        body = require_object(request.get_json(silent=True))
        return preview.preview_table(_stack(), require_text(body, "connection_id", max_length=64), body)

    if request.method != "POST":
        return {"status": "error", "message": "Use POST with a JSON body.", "details": []}, 405
    return respond(call)
