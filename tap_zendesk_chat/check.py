"""`--test`: can this config sync every selected stream? One cheap request per endpoint, no sync; a table
on stderr of what each answer means for the user, and the exit code says whether every stream can be
synced. Requests go through the client as always (budget, Retry-After, retries, token renewal)."""
import dataclasses

from tap_zendesk_chat.errors import ApiError, AuthError, EndpointError, Interrupted, UnexpectedResponseError
from tap_zendesk_chat.report import redact
from tap_zendesk_chat.streams import STREAMS

# What each result means for the user, said once under the table.
ADVICE = {
    "401": "401: the API refused the token. It is wrong, expired or revoked, or it is a Zendesk Support API token, "
           "which does not work here: create a Chat OAuth client (Chat dashboard > Settings > Account > API > Add "
           "API client), or give refresh_token, client_id and client_secret so the tap renews tokens itself.",
    "no token": "no token: the OAuth token endpoint did not issue an access token; check client_id, client_secret "
                "and refresh_token.",
    "403": "403: access denied. The user who authorized the token must be an Owner, and the plan must include REST "
           "API access (Chat Advanced/Premium or the Suite equivalents).",
    "404": "404: the API has no such endpoint at this address; check subdomain or base_url.",
    "unreachable": "unreachable: no usable answer after retries (network, DNS, subdomain or base_url).",
}


@dataclasses.dataclass
class Check:
    streams: list
    endpoint: str
    result: str  # ok, 401, 403, 404, HTTP <n>, unusable, unreachable
    meaning: str
    syncable: bool


def check_streams(client, names):
    """One Check per endpoint of the selected streams (streams sharing a walk share the request)."""
    walks = {}
    for name in names:
        walks.setdefault(STREAMS[name].walk, []).append(name)
    return [_check(client, streams) for streams in walks.values()]


def _check(client, names):
    stream = STREAMS[names[0]]
    endpoint = f"/{stream.path}"
    try:
        stream.check(client)
    except Interrupted:
        raise
    except AuthError as exc:
        if exc.status == 401:
            return Check(names, endpoint, "401", "token refused", False)
        return Check(names, endpoint, "no token", _short(exc), False)
    except EndpointError as exc:
        result = str(exc.status or "refused")
        if stream.optional:
            return Check(names, endpoint, result, f"fine: skipped during a sync ({stream.optional_why})", True)
        meaning = {"403": "access denied", "404": "no such endpoint"}.get(result) or _short(exc)
        return Check(names, endpoint, result, meaning, False)
    except UnexpectedResponseError as exc:
        return Check(names, endpoint, "unusable", f"an answer the tap cannot read: {_short(exc)}", False)
    except ApiError as exc:
        return Check(names, endpoint, "unreachable", _short(exc).split(";")[0], False)
    return Check(names, endpoint, "ok", "can be synced", True)


def _short(exc):
    """The error's text for the table: redacted before it is cut, so no part of a secret is left."""
    return redact(str(exc))[:200]


def format_table(checks):
    rows = [(", ".join(c.streams), c.endpoint, c.result, c.meaning) for c in checks]
    widths = [max(len(r[i]) for r in rows + [("stream", "endpoint", "result", "")]) for i in range(3)]
    lines = [f"{'stream':<{widths[0]}}  {'endpoint':<{widths[1]}}  {'result':<{widths[2]}}  meaning"]
    lines += [f"{a:<{widths[0]}}  {b:<{widths[1]}}  {c:<{widths[2]}}  {d}" for a, b, c, d in rows]
    failed = [name for c in checks if not c.syncable for name in c.streams]
    lines.append("")
    for result in dict.fromkeys(c.result for c in checks if not c.syncable):
        if result in ADVICE:
            lines.append(ADVICE[result])
    lines.append("Every selected stream can be synced." if not failed else
                 f"{len(failed)} stream(s) cannot be synced as configured: {', '.join(failed)}.")
    return redact("\n".join(lines))
