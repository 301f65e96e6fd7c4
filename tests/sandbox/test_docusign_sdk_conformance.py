"""DocuSign's own Python SDK (docusign-esign) judges the DocuSign emulator, used as an integrator uses it: the JWT
grant, userinfo for the base URI, templates, an envelope from the template, its status, listStatusChanges, void,
form data. Where the SDK and the emulator disagree, the emulator is wrong.

The SDK always calls the account server over ``https://`` (``request_jwt_user_token``), so here the emulator is
served with TLS on loopback, with a certificate made for 127.0.0.1 in the test's temporary directory.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import uvicorn
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from docusign_esign import (
    ApiClient,
    CustomFields,
    Envelope,
    EnvelopeDefinition,
    EnvelopesApi,
    Tabs,
    TemplateRole,
    TemplatesApi,
    Text,
    TextCustomField,
)
from docusign_esign.client.api_exception import ApiException
from docusign_esign.client.api_response import RESTClientObject
from docusign_esign.client.configuration import Configuration

from connectors.docusign.mapping import TAB_LABELS
from sandbox.serve import free_port
from settings import Settings
from tests.helpers.servers import build_app, vendor_settings


def self_signed(directory: Path) -> tuple[Path, Path]:
    """A key and certificate for 127.0.0.1, valid for a day."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    key_path, cert_path = directory / "key.pem", directory / "cert.pem"
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return key_path, cert_path


@dataclass
class TlsEmulator:
    host: str
    cert: Path

    @property
    def base_url(self) -> str:
        return f"https://{self.host}"


@pytest.fixture(scope="module")
def emulator(settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsEmulator]:
    key, cert = self_signed(tmp_path_factory.mktemp("docusign-tls"))
    port = free_port()
    config = uvicorn.Config(build_app("docusign", settings), host="127.0.0.1", port=port, log_level="warning",
                            ssl_keyfile=str(key), ssl_certfile=str(cert), log_config=None, access_log=False)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name=f"docusign-tls-{port}", daemon=True)
    thread.start()
    for _ in range(500):
        if server.started:
            break
        threading.Event().wait(0.02)
    assert server.started, "the TLS emulator did not start"
    yield TlsEmulator(host=f"127.0.0.1:{port}", cert=cert)
    server.should_exit = True
    thread.join(timeout=10)


def sdk_client(emulator: TlsEmulator) -> ApiClient:
    client = ApiClient(oauth_host_name=emulator.host)
    configuration = Configuration()
    configuration.ssl_ca_cert = str(emulator.cert)  # trust the test's certificate, nothing else
    client.rest_client = RESTClientObject(configuration=configuration)
    return client


@pytest.fixture
def logged_in(settings: Settings, emulator: TlsEmulator) -> tuple[ApiClient, str]:
    """JWT login as DocuSign's quick-starts do it: token, userinfo, the account's base_uri + /restapi."""
    config = vendor_settings(settings, "docusign")
    client = sdk_client(emulator)
    token = client.request_jwt_user_token(client_id=config.integration_key, user_id=config.user_id,
                                          oauth_host_name=emulator.host,
                                          private_key_bytes=config.private_key.encode(), expires_in=3600,
                                          scopes=["signature", "impersonation"])
    info = client.get_user_info(token.access_token)
    account = next(a for a in info.accounts if a.account_id == config.account_id)
    client.host = f"{account.base_uri}/restapi"
    return client, str(account.account_id)


def envelope_from_template(settings: Settings, *, deal_id: str) -> EnvelopeDefinition:
    config = vendor_settings(settings, "docusign")
    role = TemplateRole(role_name=config.signer_role, name="Ada Lovelace", email="ada@acme.example",
                        tabs=Tabs(text_tabs=[Text(tab_label="counterpartyName", value="Acme GmbH"),
                                             Text(tab_label="contractValue", value="USD 1200.00")]))
    return EnvelopeDefinition(template_id=config.template_id, template_roles=[role], status="sent",
                              email_subject=f"Order form {deal_id}",
                              custom_fields=CustomFields(text_custom_fields=[
                                  TextCustomField(name="revopsDealId", value=deal_id, show="false")]))


def test_docusign_sdk_jwt_login_finds_the_account(settings: Settings, logged_in: tuple[ApiClient, str]) -> None:
    client, account_id = logged_in
    assert account_id == vendor_settings(settings, "docusign").account_id
    assert client.host.startswith("https://127.0.0.1:") and client.host.endswith("/restapi")


def test_docusign_sdk_refused_assertion_raises(settings: Settings, emulator: TlsEmulator) -> None:
    config = vendor_settings(settings, "docusign")
    with pytest.raises(ApiException):
        sdk_client(emulator).request_jwt_user_token(
            client_id=config.integration_key, user_id=str(uuid.uuid4()), oauth_host_name=emulator.host,
            private_key_bytes=config.private_key.encode(), expires_in=3600)


def test_docusign_sdk_lists_the_seeded_template(settings: Settings, logged_in: tuple[ApiClient, str]) -> None:
    client, account_id = logged_in
    results = TemplatesApi(client).list_templates(account_id)
    [template] = [t for t in results.envelope_templates
                  if t.template_id == vendor_settings(settings, "docusign").template_id]
    [signer] = template.recipients.signers
    assert signer.role_name == vendor_settings(settings, "docusign").signer_role
    assert {t.tab_label for t in signer.tabs.text_tabs} == set(TAB_LABELS)


def test_docusign_sdk_creates_from_template_and_reads_status_and_form_data(
        settings: Settings, logged_in: tuple[ApiClient, str]) -> None:
    client, account_id = logged_in
    api = EnvelopesApi(client)
    deal_id = uuid.uuid4().hex[:10]

    summary = api.create_envelope(account_id, envelope_definition=envelope_from_template(settings, deal_id=deal_id))
    envelope = api.get_envelope(account_id, summary.envelope_id, include="custom_fields")
    form = api.get_form_data(account_id, summary.envelope_id)

    assert summary.status == "sent" and uuid.UUID(summary.envelope_id)
    assert envelope.status == "sent" and envelope.email_subject == f"Order form {deal_id}"
    assert [(f.name, f.value) for f in envelope.custom_fields.text_custom_fields] == [("revopsDealId", deal_id)]
    values = {item.name: item.value for item in form.form_data}
    assert values["contractValue"] == "USD 1200.00" and values["counterpartyName"] == "Acme GmbH"


def test_docusign_sdk_list_status_changes_pages_and_filters(settings: Settings,
                                                            logged_in: tuple[ApiClient, str]) -> None:
    client, account_id = logged_in
    api = EnvelopesApi(client)
    since = (dt.datetime.now(dt.UTC) - dt.timedelta(seconds=2)).isoformat()
    deal_id = uuid.uuid4().hex[:10]
    created = [api.create_envelope(account_id, envelope_definition=envelope_from_template(settings, deal_id=deal_id))
               .envelope_id for _ in range(3)]

    first = api.list_status_changes(account_id, from_date=since, custom_field=f"revopsDealId={deal_id}", count="2",
                                    start_position="0", include="custom_fields")
    second = api.list_status_changes(account_id, from_date=since, custom_field=f"revopsDealId={deal_id}", count="2",
                                     start_position="2")
    with pytest.raises(ApiException) as refused:
        api.list_status_changes(account_id)  # neither from_date nor envelope_ids

    assert [e.envelope_id for e in first.envelopes + second.envelopes] == created
    assert (first.total_set_size, first.result_set_size, second.result_set_size) == ("3", "2", "1")
    assert first.next_uri and "start_position=2" in first.next_uri and not second.next_uri
    assert refused.value.status == 400 and b"INVALID_REQUEST_PARAMETER" in refused.value.body


def test_docusign_sdk_voids_an_envelope(settings: Settings, logged_in: tuple[ApiClient, str]) -> None:
    client, account_id = logged_in
    api = EnvelopesApi(client)
    summary = api.create_envelope(account_id, envelope_definition=envelope_from_template(
        settings, deal_id=uuid.uuid4().hex[:10]))

    api.update(account_id, summary.envelope_id, envelope=Envelope(status="voided", voided_reason="deal lost"))
    voided = api.get_envelope(account_id, summary.envelope_id)
    with pytest.raises(ApiException) as again:
        api.update(account_id, summary.envelope_id, envelope=Envelope(status="voided", voided_reason="twice"))

    assert voided.status == "voided" and voided.voided_reason == "deal lost"
    assert again.value.status == 400 and b"ENVELOPE_CANNOT_VOID_INVALID_STATE" in again.value.body
