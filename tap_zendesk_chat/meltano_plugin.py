"""The tap's Meltano plugin definition (what a Meltano Hub entry or a custom extractor declares), from SETTINGS and
about.py, so that a new setting reaches Meltano without an edit here.

    python -m tap_zendesk_chat.meltano_plugin > examples/meltano/tap-zendesk-chat.meltano.yml

That file is checked in and included by examples/meltano/meltano.yml; tests/unit/test_meltano_plugin.py fails when
it differs from what this prints. `--pip-url` gives the definition for another project (a path, a wheel or a
git+https:// URL); without it the tap is installed from this checkout, two folders up from examples/meltano."""
import argparse
import json
import re

from tap_zendesk_chat.about import CAPABILITIES, NAME
from tap_zendesk_chat.config import SETTINGS

PIP_URL = "-e ../.."
OUTPUT = "examples/meltano/tap-zendesk-chat.meltano.yml"
# Meltano's kind for each of the tap's. Numbers are declared `string`: Meltano 4.4.1 turns a `decimal` setting given
# in the environment (TAP_ZENDESK_CHAT_REQUEST_TIMEOUT=30) into a Decimal, then fails to write the tap's config
# ("Object of type Decimal is not JSON serializable"); the tap reads numbers from strings. A secret is a `string`
# with `sensitive: true` (Meltano's `password` kind is deprecated).
MELTANO_KINDS = {"string": "string", "integer": "integer", "number": "string", "boolean": "boolean",
                 "date_iso8601": "date_iso8601"}
# Words a label writes otherwise than capitalised.
LABEL_WORDS = {"api": "API", "url": "URL", "id": "ID", "oauth": "OAuth"}


def setting_label(setting):
    """`max_retry_wait` -> "Max retry wait", `client_id` -> "Client ID"; a legacy key says so."""
    words = [LABEL_WORDS.get(w, w) for w in setting.name.split("_")]
    text = " ".join([words[0][:1].upper() + words[0][1:], *words[1:]])
    return text + " (legacy, ignored)" if setting.legacy else text


def describe_setting(setting):
    entry = {"name": setting.name, "kind": MELTANO_KINDS[setting.kind]}
    if setting.default is not None:
        entry["value"] = setting.default
    if setting.secret:
        entry["sensitive"] = True
    entry["label"] = setting_label(setting)
    entry["description"] = setting.description
    return entry


def settings_groups(settings=SETTINGS):
    """Every minimal set of settings that makes a valid config, as parse_config decides: each `required` setting,
    and for each `required_unless` setting either itself or all of its alternatives (with what a chosen setting
    `needs`). Optional settings such as refresh_token are in no set: the client id and secret alone are valid."""
    groups = [[s.name for s in settings if s.required]]
    for s in settings:
        if s.required_unless:
            groups = [g + [n for n in option if n not in g] for g in groups
                      for option in ([s.name], list(s.required_unless))]
    by_name = {s.name: s for s in settings}
    for group in groups:
        for name in list(group):
            group += [n for n in by_name[name].needs if n not in group]
    minimal = [g for g in groups if not any(set(other) < set(g) for other in groups)]
    return [g for i, g in enumerate(minimal) if g not in minimal[:i]]


def plugin_definition(pip_url=PIP_URL, settings=SETTINGS):
    """The extractor as Meltano declares it (keys in the order of a Meltano Hub entry)."""
    return {
        "name": NAME,
        "namespace": NAME.replace("-", "_"),
        "label": "Zendesk Chat",
        "description": "Chats, agents, bans, departments and the rest of the Zendesk Chat REST API",
        "pip_url": pip_url,
        "executable": NAME,
        "capabilities": list(CAPABILITIES),
        "settings_group_validation": settings_groups(settings),
        "settings": [describe_setting(s) for s in settings],
    }


def project_file(pip_url=PIP_URL, settings=SETTINGS):
    """A Meltano project file (for `include_paths`) holding the extractor, as YAML text."""
    header = ("# Generated from tap_zendesk_chat/config.py (SETTINGS) and about.py; do not edit. Regenerate with\n"
              f"#   python -m tap_zendesk_chat.meltano_plugin > {OUTPUT}\n"
              "# examples/meltano/meltano.yml includes it (include_paths).\n")
    return header + to_yaml({"plugins": {"extractors": [plugin_definition(pip_url, settings)]}})


# ---------------------------------------------------------------------------------------------- YAML
# Plain (unquoted) only when YAML cannot read the text as anything but that string; anything else is written as a
# JSON string, which is also a valid YAML double-quoted scalar.
_PLAIN = re.compile(r"[A-Za-z_][A-Za-z0-9_./-]*(?: [A-Za-z0-9_./()-]+)*\Z")
_YAML_WORDS = {"true", "false", "yes", "no", "on", "off", "null", "y", "n", "~"}


def _scalar(value):
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return json.dumps(value)
    if isinstance(value, str) and _PLAIN.match(value) and value.lower() not in _YAML_WORDS:
        return value
    return json.dumps(str(value), ensure_ascii=False)


def to_yaml(value):
    """Block YAML for dicts and lists of dicts; a list of scalars on one line."""
    return "\n".join(_lines(value, 0)) + "\n"


def _lines(value, indent):
    pad = " " * indent
    lines = []
    if isinstance(value, dict):
        for key, item in value.items():
            if isinstance(item, dict) or (isinstance(item, list) and item and not _flat(item)):
                lines.append(f"{pad}{key}:")
                lines += _lines(item, indent + (0 if isinstance(item, list) else 2))
            else:
                lines.append(f"{pad}{key}: {_inline(item)}")
    else:
        for item in value:
            if isinstance(item, dict):
                first, *rest = _lines(item, indent + 2)
                lines += [f"{pad}- {first[indent + 2:]}", *rest]
            else:
                lines.append(f"{pad}- {_inline(item)}")
    return lines


def _flat(items):
    return all(not isinstance(item, (dict, list)) for item in items)


def _inline(value):
    if isinstance(value, list):
        return "[" + ", ".join(_inline(item) for item in value) + "]"
    return _scalar(value)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m tap_zendesk_chat.meltano_plugin",
                                     description="Print the tap's Meltano plugin definition (a project file).")
    parser.add_argument("--pip-url", default=PIP_URL, help=f"where Meltano installs the tap from (default: {PIP_URL})")
    args = parser.parse_args(argv)
    print(project_file(args.pip_url), end="")


if __name__ == "__main__":
    main()
