#!/usr/bin/python3
"""A small kiosk client for jpkid (D-Bus API of DESIGN §6), using dbus-python.

Debian package: python3-dbus (the `dbus` module of /usr/bin/python3).

It lists the readers, waits until one holds a ready My Number Card, claims that reader,
reads the user-authentication certificate, signs the SHA-256 digest of a challenge with the
authentication key, releases the reader and prints one JSON object on stdout. Each card
request carries option `insertion`, which ties it to the card the client saw.

With --counter it runs the licence-centre counter sequence instead: claim the reader, Link
(the signing certificate's issue number and status, after the card proved it holds the key),
SignConsent for the ITEMs (default: name address; `address`, `name`, `birth-date`), the CMS
written to --consent-out (readable by its owner only: it carries the signing certificate),
Release. The reader is released however the sequence ends. Neither the certificate nor its
subject (name, address) is printed: only issue number, status and the signed document.

The secret comes from the environment (JPKID_PIN: the authentication PIN; with --counter,
JPKID_SIGN_PASSWORD: the signing password), else from the first line of stdin. It is held as
bytes only as long as the calls need it and never printed.

Usage:
    kiosk_client.py [--address ADDRESS] [--challenge TEXT] [--timeout SECONDS]
    kiosk_client.py --counter --consent-out FILE [--reference TEXT] [ITEM ...]

Without --address the system bus is used (DBUS_SYSTEM_BUS_ADDRESS is honoured). Exit status:
0 on success, 1 on a D-Bus error (printed as {"error": NAME, "message": TEXT}) or, with
--counter, a signing certificate that is not valid; 2 on a timeout or bad usage.
"""

import argparse
import hashlib
import json
import os
import sys
import time

import dbus

BUS_NAME = "io.jpkid.Jpki1"
MANAGER_PATH = "/io/jpkid/Jpki1"
MANAGER = "io.jpkid.Jpki1.Manager"
READER = "io.jpkid.Jpki1.Reader"
PROPERTIES = "org.freedesktop.DBus.Properties"


def connect(address):
    if address:
        return dbus.bus.BusConnection(address)
    return dbus.SystemBus()


def reader_info(bus, path):
    props = dbus.Interface(bus.get_object(BUS_NAME, path), PROPERTIES)
    values = props.GetAll(READER)
    return {
        "path": str(path),
        "name": str(values["Name"]),
        "state": str(values["State"]),
        "card_kind": str(values["CardKind"]),
        "insertions": int(values["Insertions"]),
    }


def wait_for_ready_card(bus, manager, timeout):
    """Polls the readers until one is `ready` (a kiosk with a GLib main loop would listen to
    StateChanged instead)."""
    deadline = time.monotonic() + timeout
    while True:
        readers = [reader_info(bus, p) for p in manager.GetReaders()]
        for r in readers:
            if r["state"] == "ready":
                return readers, r
        if time.monotonic() >= deadline:
            return readers, None
        time.sleep(0.1)


def read_secret(variable):
    secret = os.environ.get(variable)
    if secret is None:
        secret = sys.stdin.readline().strip()
    return secret.encode("ascii")


def write_private(path, data):
    """Writes `data` to `path`, created readable and writable by its owner only."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


def counter(reader, options, args):
    """The counter sequence on a claimed reader: Link, then SignConsent. Returns the result
    to print; the caller releases the reader."""
    password = read_secret("JPKID_SIGN_PASSWORD")
    try:
        link = reader.Link(dbus.ByteArray(password), options, byte_arrays=True)
        consent_options = dbus.Dictionary(dict(options), signature="sv")
        if args.reference:
            consent_options["reference"] = dbus.String(args.reference)
        items = dbus.Array(args.items, signature="s")
        signed = reader.SignConsent(
            items, dbus.ByteArray(password), consent_options, byte_arrays=True
        )
    finally:
        del password
    write_private(args.consent_out, bytes(signed["cms"]))
    return {
        "link": {
            "serial": str(link["serial"]),
            "status": str(link["status"]),
            "not_after": int(link["not-after"]) if "not-after" in link else None,
        },
        "consent": {
            "file": args.consent_out,
            "document": str(signed["document"]),
            "serial": str(signed["serial"]),
            "status": str(signed["status"]),
            "signed_at": int(signed["signed-at"]),
        },
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--address", help="D-Bus address (default: the system bus)")
    parser.add_argument("--challenge", default="kiosk login", help="text whose SHA-256 is signed")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for a card")
    parser.add_argument("--counter", action="store_true", help="run Link and SignConsent instead")
    parser.add_argument("--consent-out", metavar="FILE", help="--counter: where the consent CMS goes")
    parser.add_argument("--reference", help="--counter: a reference copied into the consent")
    parser.add_argument(
        "items",
        nargs="*",
        metavar="ITEM",
        help="--counter: the items consented to (address, name, birth-date; default name address)",
    )
    args = parser.parse_args()
    if args.counter and not args.consent_out:
        parser.error("--counter needs --consent-out FILE")
    if args.items and not args.counter:
        parser.error("ITEMs go with --counter")
    if not args.items:
        args.items = ["name", "address"]

    bus = connect(args.address)
    manager = dbus.Interface(bus.get_object(BUS_NAME, MANAGER_PATH), MANAGER)
    try:
        readers, chosen = wait_for_ready_card(bus, manager, args.timeout)
        if chosen is None:
            print(json.dumps({"error": "timeout", "readers": readers}))
            return 2
        reader = dbus.Interface(bus.get_object(BUS_NAME, chosen["path"]), READER)
        # Every card request names the card it is meant for (the reader's Insertions when the
        # customer's card was seen): if another card has been put in since, the daemon answers
        # CardRemoved before sending anything, so this customer's PIN never reaches the next
        # customer's card.
        options = dbus.Dictionary(
            {"insertion": dbus.UInt32(chosen["insertions"])}, signature="sv"
        )
        reader.Claim()
        if args.counter:
            try:
                result = counter(reader, options, args)
            finally:
                reader.Release()
            result["reader"] = chosen["path"]
            result["card_kind"] = chosen["card_kind"]
            print(json.dumps(result, sort_keys=True))
            valid = result["link"]["status"] == "valid" and result["consent"]["status"] == "valid"
            return 0 if valid else 1
        try:
            pins = reader.GetPinStatus()
            certificate = bytes(
                reader.ReadCertificate("auth", dbus.ByteArray(b""), options, byte_arrays=True)
            )
            digest = hashlib.sha256(args.challenge.encode("utf-8")).digest()
            pin = read_secret("JPKID_PIN")
            signature = bytes(
                reader.Sign(
                    "auth",
                    "sha256",
                    dbus.ByteArray(digest),
                    dbus.ByteArray(pin),
                    options,
                    byte_arrays=True,
                )
            )
            del pin
        finally:
            reader.Release()
    except dbus.exceptions.DBusException as e:
        print(json.dumps({"error": e.get_dbus_name(), "message": e.get_dbus_message()}))
        return 1

    print(
        json.dumps(
            {
                "readers": readers,
                "reader": chosen["path"],
                "card_kind": chosen["card_kind"],
                "pin_status": {str(k): int(v) for k, v in pins.items()},
                "certificate": certificate.hex(),
                "certificate_sha256": hashlib.sha256(certificate).hexdigest(),
                "digest": digest.hex(),
                "signature": signature.hex(),
            },
            sort_keys=True,
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
