"""Library results and errors -> the HTTP contract's JSON bodies, for the functions and the wizard alike."""

import logging

from .errors import EtlError

log = logging.getLogger(__name__)


def respond(call, *args, status: int = 200) -> tuple[dict, int]:
    """Run call(*args); a dict result becomes {"status": "success", **result}."""
    try:
        result = call(*args)
    except EtlError as e:
        log.warning("%s: %s", type(e).__name__, e.message)
        return e.to_body(), e.status
    except Exception:
        log.exception("unexpected error")
        return {"status": "error", "message": "Internal error: the server log has the details.", "details": []}, 500
    return {"status": "success", **(result or {})}, status
