"""Telling people: a ``NotifyPort`` per channel (a Slack-compatible incoming webhook, SMTP email), the send log
that makes each event go out once per channel, and the composition that picks recipients from settings."""

from connectors.notify.channels import NotifyPort, SlackWebhookNotifier, SmtpNotifier
from connectors.notify.service import Notifications, SendLog, notifications_from_settings

__all__ = ["NotifyPort", "Notifications", "SendLog", "SlackWebhookNotifier", "SmtpNotifier",
           "notifications_from_settings"]
