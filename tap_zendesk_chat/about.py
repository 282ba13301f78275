"""--about and --version: what the tap is and every setting it takes."""
import json

from tap_zendesk_chat.config import SETTINGS

NAME = "tap-zendesk-chat"
VERSION = "1.0.0"
CAPABILITIES = ("catalog", "discover", "state", "about")


def get_about():
    return {
        "name": NAME,
        "version": VERSION,
        "description": "Singer tap for the Zendesk Chat REST API",
        "capabilities": list(CAPABILITIES),
        "settings": [
            {"name": s.name, "kind": s.kind, "type": s.kind, "default": s.default, "secret": s.secret,
             "required": s.name in ("access_token", "subdomain"), "description": s.description}
            for s in SETTINGS
        ],
    }


def format_about(fmt):
    about = get_about()
    if fmt == "json":
        return json.dumps(about, indent=2)
    lines = [f"# {NAME} {VERSION}", "", about["description"], "", "## Capabilities", ""]
    lines += [f"- {c}" for c in about["capabilities"]]
    lines += ["", "## Settings", "", "| name | type | default | secret | description |", "|---|---|---|---|---|"]
    for s in about["settings"]:
        default = "" if s["default"] is None else json.dumps(s["default"])
        lines.append(f"| {s['name']} | {s['type']} | {default} | {'yes' if s['secret'] else 'no'} | {s['description']} |")
    return "\n".join(lines)
