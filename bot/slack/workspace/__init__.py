"""A local Slack-compatible workspace: Web API, Events/Interactivity delivery, Socket Mode, a page.

The bot cannot tell it from Slack but by its URL: the same slack_sdk / Bolt code posts to
`/api/<method>`, receives signed Events API callbacks, slash commands and interactivity
payloads at its Request URL (or Socket Mode envelopes over a WebSocket), and sees Slack's
error names and rate limits. Humans act on the web page at `/`.
"""

from bot.slack.workspace.credentials import Credentials, load_credentials
from bot.slack.workspace.server import RunningWorkspace, start_workspace
from bot.slack.workspace.state import APPROVER_GROUP_ID, APPROVER_USER_ID, NON_APPROVER_USER_ID

__all__ = ["APPROVER_GROUP_ID", "APPROVER_USER_ID", "NON_APPROVER_USER_ID", "Credentials",
           "RunningWorkspace", "load_credentials", "start_workspace"]
