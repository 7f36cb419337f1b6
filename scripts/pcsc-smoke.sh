#!/usr/bin/env bash
# Independent-client check of the virtual card behind pcscd + vpcd (run inside
# scripts/pcsc-ns.sh): OpenSC, which was written for the real card, must recognise it as `jpki`,
# list its certificates, and make an auth-key signature that openssl verifies against the
# persona's certificate. Also exercises scripts/vcard.sh (start/stop with PC/SC waits).
set -euo pipefail
cd "$(dirname "$0")/.."
persona=hw-fixtures/personas/ordinary
pin=$(sed -n '/^\[pins.auth\]/,/^\[/s/^value = "\(.*\)"/\1/p' "$persona/persona.toml")
module=$(find /usr/lib -name opensc-pkcs11.so -print -quit)
work=$(mktemp -d)
trap 'scripts/vcard.sh stop 0 >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

scripts/vcard.sh start 0 "$persona"

name=$(opensc-tool -r 0 -n)
[[ $name == jpki ]] || fail "opensc-tool -n printed '$name', expected 'jpki'"
echo "ok: opensc-tool -n -> jpki"

pkcs15-tool --reader 0 --list-certificates >"$work/certs.txt"
count=$(grep -c 'X.509 Certificate' "$work/certs.txt" || true)
((count >= 3)) || { cat "$work/certs.txt" >&2; fail "pkcs15-tool listed $count certificates"; }
echo "ok: pkcs15-tool --list-certificates -> $count certificates"

# The auth key's id as OpenSC's pkcs15-jpki emulation publishes it.
auth_id=$(awk '/Authentication/ {f=1} f && /ID/ {print $NF; exit}' "$work/certs.txt")
[[ -n $auth_id ]] || { cat "$work/certs.txt" >&2; fail "no auth certificate id"; }
pkcs15-tool --reader 0 --read-certificate "$auth_id" >"$work/auth.pem"
cmp <(openssl x509 -in "$work/auth.pem" -outform DER) \
    <(openssl x509 -inform DER -in "$persona/jpki/000A.bin" -outform DER) \
  || fail "OpenSC's auth certificate differs from the persona's"

printf 'jpkid OpenSC check\n' >"$work/data"
pkcs11-tool --module "$module" --slot-index 0 --login --pin "$pin" \
  --sign --mechanism SHA256-RSA-PKCS --id "$auth_id" \
  --input-file "$work/data" --output-file "$work/sig" >"$work/p11.log" 2>&1 \
  || { cat "$work/p11.log" >&2; fail "pkcs11-tool --sign"; }
openssl x509 -in "$work/auth.pem" -pubkey -noout >"$work/pub.pem"
openssl dgst -sha256 -verify "$work/pub.pem" -signature "$work/sig" "$work/data" >/dev/null \
  || fail "openssl did not verify the pkcs11-tool signature"
echo "ok: pkcs11-tool auth-key signature verified by openssl"

scripts/vcard.sh stop 0
echo "ok: vcard stopped, reader empty"
