"""Certificates and keys for the local API server, made once per state directory.

The API server only speaks TLS and authenticates its admin by client certificate, as a real
cluster does, so the dev cluster needs a small PKI: a CA, a serving certificate for
``127.0.0.1``/``localhost``, an admin client certificate in the ``system:masters`` group, and a
key pair for signing ServiceAccount tokens. Everything is generated with ``cryptography``
(EC P-256 for speed) and reused on later runs, so kubeconfigs stay valid across ``down``/``up``.
"""

from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

_VALIDITY = datetime.timedelta(days=365 * 5)


@dataclass(frozen=True)
class Pki:
    """Paths of the PEM files that make up the dev cluster's PKI."""

    directory: Path

    @property
    def ca_cert(self) -> Path:
        """CA certificate; clients verify the server with it, the server verifies clients."""
        return self.directory / "ca.crt"

    @property
    def ca_key(self) -> Path:
        """CA private key."""
        return self.directory / "ca.key"

    @property
    def serving_cert(self) -> Path:
        """API server certificate for ``127.0.0.1`` and ``localhost``."""
        return self.directory / "apiserver.crt"

    @property
    def serving_key(self) -> Path:
        """API server private key."""
        return self.directory / "apiserver.key"

    @property
    def admin_cert(self) -> Path:
        """Client certificate for user ``autopilot-admin`` in group ``system:masters``."""
        return self.directory / "admin.crt"

    @property
    def admin_key(self) -> Path:
        """Admin client private key."""
        return self.directory / "admin.key"

    @property
    def service_account_key(self) -> Path:
        """Private key that signs ServiceAccount tokens."""
        return self.directory / "sa.key"

    @property
    def service_account_public_key(self) -> Path:
        """Public key that verifies ServiceAccount tokens."""
        return self.directory / "sa.pub"

    def files(self) -> list[Path]:
        """Return every file of the PKI."""
        return [
            self.ca_cert,
            self.ca_key,
            self.serving_cert,
            self.serving_key,
            self.admin_cert,
            self.admin_key,
            self.service_account_key,
            self.service_account_public_key,
        ]

    def complete(self) -> bool:
        """Return whether every file exists."""
        return all(path.is_file() for path in self.files())


def ensure_pki(directory: Path) -> Pki:
    """Return the PKI in ``directory``, generating it when any file is missing.

    A partial PKI is regenerated as a whole: certificates must chain to one CA.
    """
    pki = Pki(directory)
    if pki.complete():
        return pki
    directory.mkdir(parents=True, exist_ok=True)
    directory.chmod(0o700)

    ca_key = _new_key()
    ca_name = _name("autopilot-dev-ca")
    ca_cert = (
        _builder(ca_name, ca_name, ca_key.public_key())
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(_key_usage(cert_sign=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )

    serving_key = _new_key()
    serving_cert = (
        _leaf(_name("kube-apiserver"), ca_cert, serving_key.public_key())
        .add_extension(
            x509.SubjectAlternativeName(
                [
                    x509.DNSName("localhost"),
                    x509.DNSName("kubernetes"),
                    x509.DNSName("kubernetes.default.svc"),
                    x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                ]
            ),
            critical=False,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )

    admin_key = _new_key()
    admin_cert = (
        _leaf(_name("autopilot-admin", group="system:masters"), ca_cert, admin_key.public_key())
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )

    sa_key = _new_key()

    _write_key(pki.ca_key, ca_key)
    _write_cert(pki.ca_cert, ca_cert)
    _write_key(pki.serving_key, serving_key)
    _write_cert(pki.serving_cert, serving_cert)
    _write_key(pki.admin_key, admin_key)
    _write_cert(pki.admin_cert, admin_cert)
    _write_key(pki.service_account_key, sa_key)
    pki.service_account_public_key.write_bytes(
        sa_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return pki


def _new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _name(common_name: str, *, group: str | None = None) -> x509.Name:
    attributes = [x509.NameAttribute(NameOID.COMMON_NAME, common_name)]
    if group is not None:
        # Kubernetes reads the certificate's Organization as the user's groups.
        attributes.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, group))
    return x509.Name(attributes)


def _builder(
    subject: x509.Name, issuer: x509.Name, public_key: ec.EllipticCurvePublicKey
) -> x509.CertificateBuilder:
    now = datetime.datetime.now(datetime.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        # Backdated a little so that a freshly made certificate is valid despite clock skew.
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + _VALIDITY)
    )


def _leaf(
    subject: x509.Name, ca_cert: x509.Certificate, public_key: ec.EllipticCurvePublicKey
) -> x509.CertificateBuilder:
    return (
        _builder(subject, ca_cert.subject, public_key)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(cert_sign=False), critical=True)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(
                _ec_public_key(ca_cert.public_key())
            ),
            critical=False,
        )
    )


def _ec_public_key(key: object) -> ec.EllipticCurvePublicKey:
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise TypeError("the dev CA must use an EC key")
    return key


def _key_usage(*, cert_sign: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    path.chmod(0o600)


def _write_cert(path: Path, cert: x509.Certificate) -> None:
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
