"""Outbound Messages: what a workflow rule "Opportunity stage or deal data changed" sends, as Salesforce sends it.

A SOAP ``notifications`` message (org ID, action ID, one ``Notification`` with the opportunity's selected fields)
is POSTed to every registered endpoint URL with ``Content-Type: text/xml`` and ``SOAPAction: ""``; the endpoint URL
carries the shared secret in its query (``<outbound_secret_param>=<outbound_secret>``), added here to a target
that lacks it, as the outbound message's configured URL would have it. Salesforce expects ``<Ack>true</Ack>`` and
retries otherwise; the kit's sender retries any non-2xx.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit
from xml.sax.saxutils import escape

from sandbox.kit import SandboxControl, Store, WebhookSender
from sandbox.salesforce.org import checksum

#: the fields the outbound message is configured to send
FIELDS = ("Id", "Name", "StageName", "Amount", "AccountId", "SystemModstamp")
#: the workflow rule's criteria: ISCHANGED() of the stage or of a field the deal's data comes from (never of our
#: write-back fields, so the integration's own writes send nothing)
TRIGGER_FIELDS = frozenset({"StageName", "Name", "Amount", "CurrencyIsoCode", "AccountId", "OwnerId",
                            "Revops_Region__c", "Revops_Legal_Entity__c", "Revops_Billing_Model__c",
                            "Revops_Start_Date__c", "Revops_End_Date__c", "Revops_Payment_Terms_Days__c",
                            "Revops_Non_Standard_Terms__c"})
ACTION_ID = "04k000000000001AAA"


class OutboundSender(WebhookSender):
    """The kit's sender, delivering to each endpoint URL with the shared secret in its query."""

    def __init__(self, vendor: str, *, secret_param: str, secret: str) -> None:
        super().__init__(vendor)
        self.secret_param = secret_param
        self.secret = secret

    def endpoint(self, url: str) -> str:
        parts = urlsplit(url)
        if self.secret_param in parse_qs(parts.query):
            return url
        query = "&".join(p for p in (parts.query, urlencode({self.secret_param: self.secret})) if p)
        return parts._replace(query=query).geturl()

    async def _deliver(self, urls: list[str], body: bytes, sign: Any, content_type: str,
                       record: dict[str, Any]) -> None:
        await super()._deliver([self.endpoint(url) for url in urls], body, sign, content_type, record)


def notification_xml(*, org_id: str, instance_url: str, notification_id: str, record: dict[str, Any]) -> bytes:
    """One ``notifications`` message about an opportunity."""
    fields = "".join(f"<sf:{name}>{escape(str(record[name]))}</sf:{name}>" if record.get(name) is not None
                     else f'<sf:{name} xsi:nil="true"/>' for name in FIELDS)
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" '
        'xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">'
        '<soapenv:Body><notifications xmlns="http://soap.sforce.com/2005/09/outbound">'
        f"<OrganizationId>{org_id}</OrganizationId><ActionId>{ACTION_ID}</ActionId>"
        '<SessionId xsi:nil="true"/>'
        f"<EnterpriseUrl>{escape(instance_url)}/services/Soap/c/60.0/{org_id[:15]}</EnterpriseUrl>"
        f"<PartnerUrl>{escape(instance_url)}/services/Soap/u/60.0/{org_id[:15]}</PartnerUrl>"
        f"<Notification><Id>{notification_id}</Id>"
        '<sObject xsi:type="sf:Opportunity" xmlns:sf="urn:sobject.enterprise.soap.sforce.com">'
        f"{fields}</sObject></Notification>"
        "</notifications></soapenv:Body></soapenv:Envelope>"
    ).encode()


class OutboundMessages:
    """Sends a notification when an opportunity's stage or deal data changes (:data:`TRIGGER_FIELDS`)."""

    def __init__(self, control: SandboxControl, store: Store, config: Any) -> None:
        self.control = control
        self.store = store
        self.config = config
        self.instance_url = config.base_url.rstrip("/")
        control.webhooks = OutboundSender(control.style.vendor, secret_param=config.outbound_secret_param,
                                          secret=config.outbound_secret)

    def stage_changed(self, record: dict[str, Any]) -> str:
        """Queue the notification about ``record``; its notification ID."""
        id15 = f"04l8d{self.store.next_number('sf:notification'):010d}"
        notification_id = id15 + checksum(id15)
        body = notification_xml(org_id=self.config.org_id, instance_url=self.instance_url,
                                notification_id=notification_id, record=record)
        self.control.webhooks.emit(body, lambda _url, _body: {"SOAPAction": '""'},
                                   content_type="text/xml; charset=utf-8")
        return notification_id
