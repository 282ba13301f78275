"""Every error the tap raises on purpose, sorted once: each class says what its failure means for the
run (`exit_code`, and for API errors whether only one endpoint is concerned). A message says what
happened and what to do, in one paragraph, without secrets."""


class TapError(Exception):
    exit_code = 1


class ConfigError(TapError):
    """The config, state or catalog cannot be used; the message says what to change. Nothing is written."""

    exit_code = 2


class StateError(ConfigError):
    """The state file cannot be used; the message says why and what to do."""


class CatalogError(ConfigError):
    """The catalog cannot be used; the message says what is wrong in it."""


class ApiError(TapError):
    """A request failed for good; the message names the endpoint and what to do.

    `endpoint_only`: the failure is one endpoint's (it answers 4xx for good, or a body the tap cannot
    use): the run goes on with the other streams. Otherwise (the token, the network) the run stops."""

    exit_code = 1
    endpoint_only = False

    def __init__(self, message, status=None):
        super().__init__(message)
        self.status = status  # the HTTP status that decided it, when one did


class AuthError(ApiError):
    """401, or no token could be obtained: the token is invalid, expired or revoked."""


class UnreachableError(ApiError):
    """No connection could be made to a host that has not answered in this run (its name, its port, TLS, a
    firewall or proxy): the message says which and what to check."""


class EndpointError(ApiError):
    """4xx other than 401 and 429: this endpoint is not available to the account as configured."""

    endpoint_only = True


class ForbiddenError(EndpointError):
    """403: the plan or the permissions do not allow this endpoint."""


class UnexpectedResponseError(ApiError):
    """The API answered 200 with something the tap cannot use safely."""

    endpoint_only = True


class StreamsFailedError(ApiError):
    """Some streams failed for good while the others were synced."""

    def __init__(self, failed):
        causes = "; ".join(f"{name}: {cause}" for name, cause in failed)
        super().__init__(f"{len(failed)} stream(s) failed and were not synced in full: "
                         f"{', '.join(name for name, _ in failed)}. Their last STATE is kept, so the next run "
                         f"resumes them; every other stream was synced. Causes: {causes}")
        self.streams = [name for name, _ in failed]


class Interrupted(Exception):
    """SIGTERM/SIGINT arrived: stop at the next safe point (exit 143/130, by the signal)."""


def api_message(response):
    """The API's own error text, short, from a JSON body of {"error", "description"}: redacted before it is
    cut, so that no part of a secret the API echoes survives the cut."""
    from tap_zendesk_chat.report import redact  # report imports nothing of errors; here to keep errors light
    try:
        body = response.json()
    except ValueError:
        return response.reason or ""
    if isinstance(body, dict):
        parts = [str(body[k]) for k in ("error", "description", "message") if body.get(k)]
        return redact(": ".join(parts))[:300]
    return ""


class OutputError(TapError):
    """stdout cannot be written (the target stopped reading, the disk is full): the run stops, and nothing
    more is written, so no STATE claims records that did not go out."""
