"""Sleuth's Slack side: the app the bot runs (next) and a local Slack-compatible workspace.

`bot.slack.workspace` lets the demo and the tests run the real Slack protocol with nothing
configured: the bot talks to it through slack_sdk exactly as to Slack, and only the base URL
and the tokens tell them apart.
"""
