#!/usr/bin/env python3
"""Checks an audit trail with pycadf, the library keystonemiddleware's audit
middleware builds its events with.

    scripts/cadf-check.py < audit.jsonl        # or: scripts/cadf-check.py FILE...

Each line must be one JSON object that pycadf rebuilds as a valid
`pycadf.event.Event`: every key is one pycadf knows for its type (event,
resource, host, reason, attachment), every value passes pycadf's own
validators (typeURI, ids, action and outcome taxonomies, ...), the event and
each resource and attachment are `is_valid()`, the `eventTime` has pycadf's
format, and the rebuilt event's `as_dict()` is the line itself - nothing
added, dropped or changed. pycadf only warns of an id that is no UUID; that
warning fails the check too, except for CADF's `unknown`.

Prints the events as a JSON array on success; exits 1 naming the first line
at fault otherwise. Run it with the Python that has pycadf (the test venv:
.cache/openstack/33/venv/bin/python).
"""

import datetime
import fileinput
import json
import sys
import warnings

from pycadf import attachment, event, host, reason, resource, timestamp


def only(data, allowed, what):
    if not isinstance(data, dict):
        raise ValueError(f"{what} is not an object: {data!r}")
    unknown = set(data) - set(allowed)
    if unknown:
        raise ValueError(f"{what} has keys pycadf does not know: {sorted(unknown)}")


def picked(data, keys):
    """The keyword arguments `keys` of `data` (None where missing: pycadf's
    own default, or its refusal)."""
    return {key: data.get(key) for key in keys}


def build_attachment(data, what):
    only(data, attachment.ATTACHMENT_KEYNAMES, what)
    built = attachment.Attachment(**picked(data, ["typeURI", "content", "name"]))
    if not built.is_valid():
        raise ValueError(f"{what} is not a valid attachment (typeURI, name and content are needed)")
    return built


def build_resource(data, what):
    # The attributes the facade uses; credential, geolocation and the rest
    # are pycadf's too but never written by it.
    allowed = ["typeURI", "id", "name", "domain", "ref", "host", "attachments"]
    only(data, allowed, what)
    built = resource.Resource(**picked(data, ["id", "typeURI", "name", "ref", "domain"]))
    if "host" in data:
        only(data["host"], host.HOST_KEYNAMES, what + ".host")
        built.host = host.Host(**data["host"])
    for index, item in enumerate(data.get("attachments", [])):
        built.add_attachment(build_attachment(item, f"{what}.attachments[{index}]"))
    if not built.is_valid():
        raise ValueError(f"{what} is not a valid resource")
    return built


def build_event(data):
    allowed = [
        "typeURI", "eventType", "id", "eventTime", "action", "outcome",
        "reason", "initiator", "target", "observer", "attachments",
    ]
    only(data, allowed, "the event")
    if data.get("typeURI") != event.TYPE_URI_EVENT:
        raise ValueError(f"typeURI is not {event.TYPE_URI_EVENT}")
    built_reason = None
    if "reason" in data:
        only(data["reason"], reason.REASON_KEYNAMES, "reason")
        built_reason = reason.Reason(**data["reason"])
    built = event.Event(
        **picked(data, ["eventType", "id", "eventTime", "action", "outcome"]),
        initiator=build_resource(data.get("initiator"), "initiator"),
        target=build_resource(data.get("target"), "target"),
        observer=build_resource(data.get("observer"), "observer"),
        reason=built_reason,
    )
    for index, item in enumerate(data.get("attachments", [])):
        built.add_attachment(build_attachment(item, f"attachments[{index}]"))
    if not built.is_valid():
        raise ValueError("pycadf says the event is not valid")
    datetime.datetime.strptime(data["eventTime"], timestamp.TIME_FORMAT)
    if built.as_dict() != data:
        raise ValueError(f"pycadf rebuilds it differently: {json.dumps(built.as_dict(), sort_keys=True)}")
    return built


def main():
    events = []
    for number, line in enumerate(fileinput.input(), start=1):
        try:
            data = json.loads(line)
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                built = build_event(data)
            for warning in caught:
                if "Invalid uuid: unknown." not in str(warning.message):
                    raise ValueError(f"pycadf warns: {warning.message}")
        except Exception as error:  # noqa: BLE001 - every failure names its line
            print(f"line {number}: {error}\n{line}", file=sys.stderr)
            return 1
        events.append(built.as_dict())
    json.dump(events, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
