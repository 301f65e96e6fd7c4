"""Salesforce Outbound Messages: the SOAP ``notifications`` a workflow rule or flow sends when an opportunity
changes, received at ``POST /webhooks/salesforce`` and answered with Salesforce's ``Ack``.

Authentication: Salesforce signs nothing and sends no header we choose; what it can carry is the endpoint URL
configured on the outbound message, and (with mutual TLS) its client certificate. We use the URL: the shared
secret travels in the query parameter ``SALESFORCE_OUTBOUND_SECRET_PARAM`` (``revops_token`` by default) of the
endpoint URL over HTTPS, compared in constant time, and the message's ``OrganizationId`` must be our org's. Mutual
TLS would be stronger but needs the TLS terminator in front of the ingress to check Salesforce's certificate,
which this deployment does not own; the secret in the URL works behind any proxy.

Every notification is acknowledged with ``<Ack>true</Ack>`` once accepted, also when it is about an opportunity no
flow acts on: Salesforce redelivers an unacknowledged message for 24 hours. A refused message gets a 4xx (never a
5xx, which would only make Salesforce retry a forgery). The XML is parsed with ``defusedxml``: a DTD, entity
declaration or external reference is refused before anything is expanded.
"""

from __future__ import annotations

import hmac
import xml.etree.ElementTree as ET  # noqa: S405 -- only for the types; parsing is defusedxml's
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring

from canonical import DealChanged, DealStageReached, DomainEvent
from connectors.errors import PayloadInvalid, SignatureInvalid
from connectors.salesforce.ids import to_18
from connectors.salesforce.mapping import parse_datetime
from connectors.salesforce.spec import SalesforceSettings
from settings import Settings

SOAP_NS = "http://schemas.xmlsoap.org/soap/envelope/"
OUTBOUND_NS = "http://soap.sforce.com/2005/09/outbound"
SOBJECT_NS = "urn:sobject.enterprise.soap.sforce.com"
XSI_NS = "http://www.w3.org/2001/XMLSchema-instance"
#: Salesforce sends at most 100 notifications in one message
MAX_NOTIFICATIONS = 100
MAX_FIELD_CHARS = 10_000

ACK = (b'<?xml version="1.0" encoding="UTF-8"?>'
       b'<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/">'
       b'<soapenv:Body><notificationsResponse xmlns="http://soap.sforce.com/2005/09/outbound">'
       b'<Ack>true</Ack></notificationsResponse></soapenv:Body></soapenv:Envelope>')


def soap_fault(reason: str) -> bytes:
    """A SOAP 1.1 client fault (what a refused message is answered with)."""
    text = reason.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return (b'<?xml version="1.0" encoding="UTF-8"?>'
            b'<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Body>'
            b"<soapenv:Fault><faultcode>soapenv:Client</faultcode><faultstring>" + text.encode() +
            b"</faultstring></soapenv:Fault></soapenv:Body></soapenv:Envelope>")


def parse_envelope(body: bytes) -> ET.Element:
    """The ``notifications`` element of a SOAP message; ``PayloadInvalid`` for anything else, DTDs included."""
    try:
        root = fromstring(body, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except DefusedXmlException as exc:
        raise PayloadInvalid("body", f"XML with a DTD or entities is refused ({type(exc).__name__})") from exc
    except (ET.ParseError, ValueError) as exc:
        raise PayloadInvalid("body", "not well-formed XML") from exc
    notifications = root.find(f"{{{SOAP_NS}}}Body/{{{OUTBOUND_NS}}}notifications")
    if root.tag != f"{{{SOAP_NS}}}Envelope" or notifications is None:
        raise PayloadInvalid("Envelope.Body.notifications", "not an Outbound Message")
    return notifications


def _child(element: ET.Element, name: str, namespace: str = OUTBOUND_NS) -> str | None:
    found = element.find(f"{{{namespace}}}{name}")
    if found is None or found.get(f"{{{XSI_NS}}}nil") == "true":
        return None
    text = (found.text or "").strip()
    if len(text) > MAX_FIELD_CHARS:
        raise PayloadInvalid(name, "value too long")
    return text or None


class SalesforceOutboundMessages:
    """The :class:`connectors.ports.WebhookReceiver` for Outbound Messages about opportunities."""

    vendor = "salesforce"
    header_prefixes = ("soapaction",)

    def __init__(self, *, org_id: str, secret: str, secret_param: str, approval_stage: str,
                 closed_won_stage: str) -> None:
        self.org_id = to_18(org_id)
        self._secret = secret.encode()
        self.secret_param = secret_param
        self.approval_stage = approval_stage
        self.closed_won_stage = closed_won_stage

    async def verify(self, *, method: str, url: str, headers: Mapping[str, str], body: bytes) -> None:
        """The secret of the endpoint URL's query, then the message's organisation."""
        given = parse_qs(urlsplit(url).query).get(self.secret_param, [])
        if len(given) != 1:
            raise SignatureInvalid(f"missing {self.secret_param} query parameter")
        if not hmac.compare_digest(given[0].encode(), self._secret):
            raise SignatureInvalid(f"{self.secret_param} does not match")
        try:
            org = _child(parse_envelope(body), "OrganizationId")
        except PayloadInvalid as exc:
            raise SignatureInvalid(f"organisation not readable: {exc}") from None
        try:
            same = org is not None and to_18(org) == self.org_id
        except ValueError:
            same = False
        if not same:
            raise SignatureInvalid("OrganizationId is not this org's")

    def parse(self, *, headers: Mapping[str, str], body: bytes) -> list[DomainEvent]:
        """Each opportunity notification as :class:`DealChanged` (a run waiting for corrected data re-reads the
        deal), preceded by :class:`DealStageReached` when the opportunity is at the approval or closed-won stage.
        A notification does not say which field changed, so both are given, under their own event IDs; the intake
        ignores what no run needs. Notifications about other objects are dropped (and still acknowledged)."""
        notifications = parse_envelope(body).findall(f"{{{OUTBOUND_NS}}}Notification")
        if len(notifications) > MAX_NOTIFICATIONS:
            raise PayloadInvalid("Notification", f"more than {MAX_NOTIFICATIONS} notifications")
        events: list[DomainEvent] = []
        for index, notification in enumerate(notifications):
            events.extend(self._events(index, notification))
        return events

    def _events(self, index: int, notification: ET.Element) -> list[DomainEvent]:
        where = f"Notification[{index}]"
        notification_id = _child(notification, "Id")
        if not notification_id or not notification_id.isalnum():
            raise PayloadInvalid(f"{where}.Id", "missing or not an ID")
        sobject = notification.find(f"{{{OUTBOUND_NS}}}sObject")
        if sobject is None:
            raise PayloadInvalid(f"{where}.sObject", "missing")
        if sobject.get(f"{{{XSI_NS}}}type", "").split(":")[-1] != "Opportunity":
            return []
        try:
            deal_id = to_18(_child(sobject, "Id", SOBJECT_NS) or "")
        except ValueError:
            raise PayloadInvalid(f"{where}.sObject.Id", "not a Salesforce ID") from None
        occurred = parse_datetime(_child(sobject, "SystemModstamp", SOBJECT_NS)
                                  or _child(sobject, "LastModifiedDate", SOBJECT_NS))
        common: dict[str, Any] = {"source_system": self.vendor, "occurred_at": occurred or datetime.now(UTC),
                                  "correlation_id": f"{self.vendor}-{notification_id}", "deal_id": deal_id}
        fields = {child.tag.split("}")[-1]: (child.text or "").strip()[:MAX_FIELD_CHARS] for child in sobject
                  if child.tag.split("}")[-1] not in ("Id", "SystemModstamp", "LastModifiedDate")}
        events: list[DomainEvent] = []
        stage = _child(sobject, "StageName", SOBJECT_NS)
        if stage in (self.approval_stage, self.closed_won_stage):
            events.append(DealStageReached(stage=stage, is_closed_won=stage == self.closed_won_stage,
                                           source_event_id=notification_id, **common))
        events.append(DealChanged(properties=dict(list(fields.items())[:50]),
                                  source_event_id=f"{notification_id}:changed", **common))
        return events

    def render_answer(self, status: int, payload: Mapping[str, Any]) -> tuple[bytes, str]:
        """The SOAP answer of the ingress: ``Ack`` true when accepted, a client fault when refused."""
        if status < 300:
            return ACK, "text/xml; charset=utf-8"
        return soap_fault(str(payload.get("reason") or "refused")), "text/xml; charset=utf-8"


def from_settings(settings: Settings, *, config: SalesforceSettings | None = None) -> SalesforceOutboundMessages:
    """The receiver of the configured org, with its outbound secret and the stages flows act on."""
    config = config or SalesforceSettings.of(settings)
    return SalesforceOutboundMessages(org_id=config.org_id, secret=config.outbound_secret,
                                      secret_param=config.outbound_secret_param,
                                      approval_stage=config.approval_stage, closed_won_stage=config.closed_won_stage)


__all__ = ["ACK", "SalesforceOutboundMessages", "from_settings", "parse_envelope", "soap_fault"]
