"""--about and --version: what the tap is and every setting it takes (from config.SETTINGS)."""
import json

from tap_zendesk_chat.config import SETTINGS

NAME = "tap-zendesk-chat"
VERSION = "2.0.0"
# As Meltano names them: --catalog (and --properties), --discover, --state, --about; ACTIVATE_VERSION messages for
# full-table streams (setting activate_version); --test, a check of the credentials without a sync.
CAPABILITIES = ("catalog", "discover", "state", "about", "activate-version", "test")


def describe_setting(setting):
    """One setting as --about lists it. `required` is true only without an alternative; `required_unless`
    names the settings that, all given, make it optional, and says so in words."""
    return {
        "name": setting.name,
        "kind": setting.kind,
        "type": setting.kind,
        "default": setting.default,
        "secret": setting.secret,
        "required": setting.required,
        "required_unless": {"settings": list(setting.required_unless),
                            "description": f"required unless {setting.unless}"} if setting.required_unless else None,
        "needs": list(setting.needs),
        "range": {"low": setting.low, "high": setting.high} if setting.has_range else None,
        "legacy": bool(setting.legacy),
        "description": setting.description,
    }


def get_about(settings=SETTINGS):
    return {
        "name": NAME,
        "version": VERSION,
        "description": "Singer tap for the Zendesk Chat REST API",
        "capabilities": list(CAPABILITIES),
        "settings": [describe_setting(s) for s in settings],
    }


def _cell(text):
    return str(text).replace("|", "\\|").replace("\n", " ")


def _required_cell(s):
    if s["required"]:
        return "yes"
    if s["required_unless"]:
        return f"unless {' and '.join(s['required_unless']['settings'])}"
    return "no (legacy: accepted and ignored)" if s["legacy"] else "no"


def _range_cell(s):
    if not s["range"]:
        return ""
    low, high = s["range"]["low"], s["range"]["high"]
    if low is not None and high is not None:
        return f"{low}–{high}"
    return f"≥ {low}" if low is not None else f"≤ {high}"


def format_about(fmt, settings=SETTINGS):
    about = get_about(settings)
    if fmt == "json":
        return json.dumps(about, indent=2)
    lines = [f"# {NAME} {VERSION}", "", about["description"], "", "## Capabilities", ""]
    lines += [f"- {c}" for c in about["capabilities"]]
    lines += ["", "## Settings", "", "| name | type | default | required | range | secret | description |",
              "|---|---|---|---|---|---|---|"]
    for s in about["settings"]:
        default = "" if s["default"] is None else json.dumps(s["default"])
        lines.append(f"| {s['name']} | {s['type']} | {_cell(default)} | {_required_cell(s)} | {_range_cell(s)} "
                     f"| {'yes' if s['secret'] else 'no'} | {_cell(s['description'])} |")
    return "\n".join(lines)
