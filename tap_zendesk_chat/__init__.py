"""tap-zendesk-chat: parse arguments, then discover, sync or about."""
import argparse
import dataclasses
import json
import signal
import sys
import threading

import singer

from tap_zendesk_chat import about, check, state
from tap_zendesk_chat.client import Client
from tap_zendesk_chat.errors import ConfigError, Interrupted, OutputError, TapError
from tap_zendesk_chat.config import load_config, read_json_file, save_refresh_token
from tap_zendesk_chat.rejects import Rejects, default_path as default_rejects_path
from tap_zendesk_chat.messages import MessageWriter, write_text
from tap_zendesk_chat.report import install_redaction, redact_tracebacks
from tap_zendesk_chat.streams import STREAMS

LOGGER = singer.get_logger()
EXIT_SIGINT, EXIT_SIGTERM = 130, 143


def parse_args(argv):
    parser = argparse.ArgumentParser(prog=about.NAME, description="Singer tap for the Zendesk Chat REST API.")
    parser.add_argument("-c", "--config", help="config file (JSON)")
    parser.add_argument("-s", "--state", help="state file (JSON): the value of the last STATE message")
    parser.add_argument("--catalog", help="catalog file (JSON), as --discover writes it")
    parser.add_argument("-p", "--properties", help="legacy name of --catalog")
    parser.add_argument("-d", "--discover", action="store_true", help="write the catalog and exit")
    parser.add_argument("-t", "--test", action="store_true",
                        help="check the credentials and plan with one request per endpoint of the selected streams "
                             "(no sync): a table on stderr; exit 0 when every one can be synced")
    parser.add_argument("--about", action="store_true", help="describe the tap and its settings")
    parser.add_argument("--format", choices=("json", "markdown"), default="json", help="format of --about")
    parser.add_argument("--version", action="version", version=f"{about.NAME} {about.VERSION}")
    args = parser.parse_args(argv)
    if not args.about and not args.config:
        parser.error("--config is required (except with --about or --version)")
    if args.catalog and args.properties:
        parser.error("give --catalog or --properties, not both")
    return args


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if args.about:
        try:
            write_text(about.format_about(args.format) + "\n")
        except OutputError as exc:
            LOGGER.critical(str(exc))
            sys.exit(exc.exit_code)
        return
    sys.exit(run(args))


def run(args):
    # Imported here, not with the package: they import transform, which `python -m tap_zendesk_chat.transform`
    # would then find imported already (runpy warns about that).
    from tap_zendesk_chat.discover import discover_catalog, load_catalog, select_all
    from tap_zendesk_chat.sync import Sync

    stop = threading.Event()
    received = []

    def on_signal(signum, _frame):
        received.append(signum)
        LOGGER.warning("Received %s; stopping at the next safe point", signal.Signals(signum).name)
        stop.set()

    try:
        config = load_config(args.config, about.VERSION)
        install_redaction(config.secrets)
        redact_tracebacks()
        for note in config.notes:
            LOGGER.info(note)
        if not args.discover:
            catalog_path = args.catalog or args.properties
            selected = load_catalog(catalog_path, config) if catalog_path else select_all(config)
        if args.test:
            # A check answers quickly: a host that does not answer is reported, not retried for minutes.
            config = dataclasses.replace(config, max_retries=min(config.max_retries, 2))
        elif not args.discover:
            raw_state = read_json_file(args.state, "state") if args.state else None
            current, notes = state.upgrade_state(raw_state, STREAMS)
            for note in notes:
                LOGGER.info(note)
    except ConfigError as exc:
        LOGGER.critical(str(exc))
        return exc.exit_code

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, on_signal)
    client = Client(config, stop, lambda token: save_refresh_token(args.config, token))
    try:
        if args.test:
            checks = check.check_streams(client, [s.name for s in selected])
            sys.stderr.write(check.format_table(checks) + "\n")
            sys.stderr.flush()
            return 0 if all(c.syncable for c in checks) else 1
        if args.discover:
            write_text(json.dumps(discover_catalog(client, LOGGER), indent=2) + "\n")
            return 0
        if not selected:
            LOGGER.warning("The catalog selects no stream; nothing to do")
            return 0
        rejected = Rejects(config.rejects_path or default_rejects_path(args.state, args.config))
        Sync(config, client, MessageWriter(), current, selected, stop, rejected).run()
        return 0
    except Interrupted:
        return EXIT_SIGINT if received and received[0] == signal.SIGINT else EXIT_SIGTERM
    except TapError as exc:  # the API or stdout failed for good, or input found bad only once the sync reads it
        LOGGER.critical(str(exc))
        return exc.exit_code
    finally:
        client.close()
