"""A local Slack workspace: the mock Slack of the integration tests and the browser UI of ``fwbot dev``."""

from .model import APP_ID, BOT_ID, BOT_USER_ID, ApiCall, Delivery, Message, RateViolation, User, View
from .workspace import SlackWorkspace

__all__ = ["APP_ID", "BOT_ID", "BOT_USER_ID", "ApiCall", "Delivery", "Message", "RateViolation", "SlackWorkspace",
           "User", "View"]
