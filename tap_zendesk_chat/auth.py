"""The access token: as configured, or obtained and renewed with OAuth grants (refresh_token, or
client_credentials for a confidential client), a rotated refresh token kept for the next run."""
import singer

from tap_zendesk_chat.errors import AuthError, api_message
from tap_zendesk_chat.report import add_secret

LOGGER = singer.get_logger()
PREREQUISITES = ("The tap needs a Zendesk Chat OAuth token (Chat dashboard → Settings → Account → API → Add API "
                 "client; Support API tokens do not work), authorized by a user with Owner permissions, on a plan "
                 "with REST API access (Advanced/Premium or the Suite equivalents).")


class Authenticator:
    """Holds the bearer token. `obtain(post)` asks the token endpoint for a new one; `post(url, data)` is
    the client's, so the token endpoint gets the same retries, Retry-After, budget and counters as the API."""

    def __init__(self, config, save_refresh_token=None):
        self.token_url = config.token_url
        self.token = config.access_token
        self._client_id, self._client_secret = config.client_id, config.client_secret
        self._refresh_token = config.refresh_token
        self._save_refresh_token = save_refresh_token  # token -> None, or why it could not be saved
        self.can_renew = config.can_obtain_tokens

    def headers(self):
        return {"Authorization": f"Bearer {self.token}"}

    def obtain(self, post):
        data = {"client_id": self._client_id, "client_secret": self._client_secret, "scope": "read"}
        if self._refresh_token:
            data.update(grant_type="refresh_token", refresh_token=self._refresh_token)
        else:
            data["grant_type"] = "client_credentials"
        response = post(self.token_url, data)
        body = {}
        try:
            body = response.json()
        except ValueError:
            pass
        token = body.get("access_token") if isinstance(body, dict) else None
        if response.status_code != 200 or not isinstance(token, str) or not token:
            raise AuthError(
                f"The OAuth token endpoint {self.token_url} refused to issue an access token "
                f"({data['grant_type']} grant, HTTP {response.status_code} {api_message(response)}). "
                "Check client_id, client_secret and refresh_token. " + PREREQUISITES)
        rotated = body.get("refresh_token")
        if self._refresh_token and isinstance(rotated, str) and rotated and rotated != self._refresh_token:
            self._rotated(rotated)
        add_secret(token)
        self.token = token
        LOGGER.info("Obtained a new access token (%s grant)", data["grant_type"])

    def _rotated(self, token):
        """The old refresh token may be dead now: use the new one, and keep it for the next run."""
        add_secret(token)
        self._refresh_token = token
        problem = self._save_refresh_token(token) if self._save_refresh_token else "no config file to write to"
        if problem is None:
            LOGGER.info("The token endpoint issued a new refresh token; saved it in the config file for the next run")
        else:
            LOGGER.warning("The token endpoint issued a new refresh token, used for this run; it could not be saved in "
                           "the config file (%s). If the old one stops working, the next run needs a new refresh "
                           "token.", problem)
