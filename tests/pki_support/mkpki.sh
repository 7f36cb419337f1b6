#!/bin/sh
# Build a small JPKI-shaped test PKI with OpenSSL into $1 (used by tests/pki_*.rs until the
# committed hw-fixtures test PKI is available). Roots say O=JPKI-TESTPKI.
set -eu
D=$1
mkdir -p "$D"
cd "$D"
cat > ext.cnf <<'CNF'
[ root ]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[ sign_ee ]
basicConstraints = critical, CA:FALSE
keyUsage = critical, nonRepudiation, digitalSignature
certificatePolicies = critical, 1.2.392.200149.8.5.1.1.20
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
subjectAltName = @jpki_san
[ sign_ee_noncrit ]
basicConstraints = CA:FALSE
keyUsage = critical, nonRepudiation, digitalSignature
certificatePolicies = 1.2.392.200149.8.5.1.1.20
authorityKeyIdentifier = keyid
subjectAltName = @jpki_san_alt
[ sign_ee_nopolicy ]
basicConstraints = critical, CA:FALSE
keyUsage = critical, nonRepudiation, digitalSignature
authorityKeyIdentifier = keyid
[ sign_ee_ca ]
basicConstraints = critical, CA:TRUE
keyUsage = critical, nonRepudiation, digitalSignature
certificatePolicies = 1.2.392.200149.8.5.1.1.20
authorityKeyIdentifier = keyid
[ sign_ee_unknown_crit ]
basicConstraints = critical, CA:FALSE
keyUsage = critical, nonRepudiation, digitalSignature
certificatePolicies = 1.2.392.200149.8.5.1.1.20
authorityKeyIdentifier = keyid
1.2.3.4.5 = critical, DER:05:00
[ sign_ee_eku_server ]
basicConstraints = critical, CA:FALSE
keyUsage = critical, nonRepudiation, digitalSignature
extendedKeyUsage = critical, serverAuth
certificatePolicies = critical, 1.2.392.200149.8.5.1.1.20
authorityKeyIdentifier = keyid
[ sign_ee_eku_any ]
basicConstraints = critical, CA:FALSE
keyUsage = critical, nonRepudiation, digitalSignature
extendedKeyUsage = critical, anyExtendedKeyUsage
certificatePolicies = critical, 1.2.392.200149.8.5.1.1.20
authorityKeyIdentifier = keyid
[ auth_ee_eku_client ]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = critical, clientAuth
certificatePolicies = critical, 1.2.392.200149.8.5.1.3.30
authorityKeyIdentifier = keyid
[ auth_ee ]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
certificatePolicies = critical, 1.2.392.200149.8.5.1.3.30
authorityKeyIdentifier = keyid
[ ocsp_ee ]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = OCSPSigning
authorityKeyIdentifier = keyid
[ jpki_san ]
otherName.1 = 1.2.392.200149.8.5.5.1;FORMAT:UTF8,UTF8:試験　太郎
otherName.2 = 1.2.392.200149.8.5.5.2;FORMAT:UTF8,UTF8:
otherName.3 = 1.2.392.200149.8.5.5.3;FORMAT:UTF8,UTF8:1
otherName.4 = 1.2.392.200149.8.5.5.4;FORMAT:UTF8,UTF8:419900102
otherName.5 = 1.2.392.200149.8.5.5.5;FORMAT:UTF8,UTF8:東京都千代田区霞が関二丁目１番２号
otherName.6 = 1.2.392.200149.8.5.5.6;FORMAT:UTF8,UTF8:
[ jpki_san_alt ]
otherName.1 = 1.2.392.200149.8.5.5.1;FORMAT:UTF8,UTF8:試験　花子
otherName.2 = 1.2.392.200149.8.5.5.2;FORMAT:UTF8,UTF8:E000
otherName.3 = 1.2.392.200149.8.5.5.3;FORMAT:UTF8,UTF8:2
otherName.4 = 1.2.392.200149.8.5.5.4;FORMAT:UTF8,UTF8:520200102
otherName.5 = 1.2.392.200149.8.5.5.5;FORMAT:UTF8,UTF8:大阪府大阪市北区
otherName.6 = 1.2.392.200149.8.5.5.6;FORMAT:UTF8,UTF8:E001
CNF
SIGN_DN="/C=JP/O=JPKI-TESTPKI/OU=JPKI for digital signature/OU=Japan Agency for Local Authority Information Systems"
AUTH_DN="/C=JP/O=JPKI-TESTPKI/OU=JPKI for user authentication/OU=Japan Agency for Local Authority Information Systems"
root() { # name dn keyalg...
  n=$1; dn=$2; shift 2
  openssl genpkey "$@" -out "$n.key" 2>/dev/null
  openssl req -new -x509 -${DGST:-sha256} -key "$n.key" -subj "$dn" -days 3650 -set_serial "0x$(openssl rand -hex 4)" \
    -extensions root -config ext.cnf -out "$n.pem" -utf8 2>/dev/null
  openssl x509 -in "$n.pem" -outform DER -out "$n.der"
}
ee() { # name issuer ext serial dn [keyalg...]
  n=$1; ca=$2; ext=$3; serial=$4; dn=$5; shift 5
  if [ $# -eq 0 ]; then set -- -algorithm RSA -pkeyopt rsa_keygen_bits:2048; fi
  openssl genpkey "$@" -out "$n.key" 2>/dev/null
  openssl req -new -key "$n.key" -subj "$dn" -out "$n.csr" -utf8 -config ext.cnf 2>/dev/null
  openssl x509 -req -${DGST:-sha256} -in "$n.csr" -CA "$ca.pem" -CAkey "$ca.key" -set_serial "$serial" -days 365 \
    -extfile ext.cnf -extensions "$ext" -out "$n.pem" 2>/dev/null
  openssl x509 -in "$n.pem" -outform DER -out "$n.der"
}
RSA="-algorithm RSA -pkeyopt rsa_keygen_bits:2048"
root sign_root_g1 "$SIGN_DN" $RSA
root sign_root_g2 "$SIGN_DN" $RSA
root auth_root_g1 "$AUTH_DN" $RSA
root rogue_sign_root "$SIGN_DN" $RSA
root ec256_root "$SIGN_DN" -algorithm EC -pkeyopt ec_paramgen_curve:P-256
DGST=sha384 root ec384_root "$SIGN_DN" -algorithm EC -pkeyopt ec_paramgen_curve:P-384
EE_DN="/C=JP/L=Tokyo/L=Chiyoda/CN=20260101000000000010001A"
ee sign_ok sign_root_g2 sign_ee 0x10000001 "$EE_DN"
ee sign_ok_g1 sign_root_g1 sign_ee 0x10000002 "$EE_DN"
ee sign_revoked sign_root_g2 sign_ee 0x10000005 "$EE_DN"
ee sign_highbit sign_root_g2 sign_ee 0x80000009 "$EE_DN"
ee sign_noncrit sign_root_g2 sign_ee_noncrit 0x1000000A "$EE_DN"
ee sign_nopolicy sign_root_g2 sign_ee_nopolicy 0x10000006 "$EE_DN"
ee sign_ca sign_root_g2 sign_ee_ca 0x10000007 "$EE_DN"
ee sign_unknown_crit sign_root_g2 sign_ee_unknown_crit 0x10000008 "$EE_DN"
ee sign_under_auth auth_root_g1 sign_ee 0x20000001 "$EE_DN"
ee sign_eku_server sign_root_g2 sign_ee_eku_server 0x1000000B "$EE_DN"
ee sign_eku_any sign_root_g2 sign_ee_eku_any 0x1000000C "$EE_DN"
ee auth_eku_client auth_root_g1 auth_ee_eku_client 0x20000003 "/C=JP/CN=20260101000000000010001C"
# A negative serial (RFC 5280 forbids it): the same bytes as the positive 0x00FB.
ee sign_negative sign_root_g2 sign_ee -5 "$EE_DN"
ee auth_ok auth_root_g1 auth_ee 0x20000002 "/C=JP/CN=20260101000000000010001B"
ee rogue_ee rogue_sign_root sign_ee 0x10000003 "$EE_DN"
ee ocsp_g2 sign_root_g2 ocsp_ee 0x30000001 "/C=JP/O=JPKI-TESTPKI/CN=OCSP responder g2"
ee ocsp_rogue rogue_sign_root ocsp_ee 0x30000002 "/C=JP/O=JPKI-TESTPKI/CN=OCSP responder g2"
ee ec256_ee ec256_root sign_ee 0x40000001 "$EE_DN" -algorithm EC -pkeyopt ec_paramgen_curve:P-256
DGST=sha384 ee ec384_ee ec384_root sign_ee 0x40000002 "$EE_DN" -algorithm EC -pkeyopt ec_paramgen_curve:P-384
# PKCS#8 DER of the keys the Rust side signs with.
for k in sign_root_g2 sign_root_g1 rogue_sign_root sign_ok; do
  openssl pkcs8 -topk8 -nocrypt -in "$k.key" -outform DER -out "$k.pk8.der"
done
mkdir -p anchors
cp sign_root_g1.pem sign_root_g2.der auth_root_g1.pem ec256_root.der ec384_root.pem anchors/
touch done
