"""`callpulse alerts list|history|test|evaluate|silence|unsilence`: the alert rules at work."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import click
import httpx
from rich.console import Console
from rich.table import Table

from callpulse.alerts.engine import run_round
from callpulse.alerts.evaluate import FIRING, OK, Transition
from callpulse.alerts.notify import payload
from callpulse.alerts.overview import AlertItem, overview
from callpulse.alerts.periodic import dashboard_url, webhook_of
from callpulse.alerts.rules import Rule, format_span
from callpulse.alerts.webhook import deliver_due
from callpulse.analytics import Analytics
from callpulse.cli.base import cli as root
from callpulse.cli.base import parse_age, parse_moment, settings_of, store_of
from callpulse.config import Settings
from callpulse.errors import CallpulseError
from callpulse.export import iso_utc


@root.group()
def alerts() -> None:
    """Alert rules on success rate, poor calls, MOS, volume and silent lines."""


def _rule(settings: Settings, name: str) -> Rule:
    rules = {rule.name: rule for rule in settings.alerts}
    if name not in rules:
        known = ", ".join(rules) or "none: the defaults are off and no [[alerts]] is configured"
        raise CallpulseError(f"no alert rule {name!r} (rules: {known})")
    return rules[name]


def _thresholds(rule: Rule) -> str:
    if rule.metric == "volume":
        return f"x{rule.factor:g} {rule.direction} (reset x{rule.reset_factor:g})"
    return f"{rule.trigger:g} (reset {rule.reset:g})"


def _time(moment: datetime | None) -> str:
    return "" if moment is None else iso_utc(moment)


def _item_json(item: AlertItem) -> str:
    return item.model_dump_json()


def _items_table(title: str, items: list[AlertItem]) -> Table:
    table = Table(title=title)
    for column in ("rule", "state", "scope", "value", "threshold", "started", "resolved", "at"):
        table.add_column(column)
    for i in items:
        table.add_row(
            i.rule, i.state, i.scope,
            "" if i.value is None else f"{i.value:.4g}",
            "" if i.threshold is None else f"{i.threshold:.4g}",
            _time(i.started_at), _time(i.resolved_at), _time(i.at),
        )  # fmt: skip
    return table


@alerts.command("list")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@click.pass_context
def alerts_list(ctx: click.Context, as_json: bool) -> None:
    """The rules in force, their silences and the active alerts.

    Example: callpulse alerts list
    """
    settings = settings_of(ctx)
    with store_of(ctx) as store:
        store.upgrade()
        shown = overview(store, datetime.now(UTC), limit=1)
        with store.alert_book(read_only=True) as book:
            assert book is not None
            silences = {s.rule: s.until for s in book.silences(datetime.now(UTC))}
    if as_json:
        for rule in settings.alerts:
            click.echo(json.dumps({
                "rule": rule.name, "enabled": rule.enabled, "metric": rule.metric,
                "scope": rule.scope_label, "per": rule.per, "window": format_span(rule.window),
                "severity": rule.severity, "silenced_until":
                    None if rule.name not in silences else iso_utc(silences[rule.name]),
            }))  # fmt: skip
        for item in shown.active:
            click.echo(_item_json(item))
        return
    table = Table(title="alert rules")
    for column in ("rule", "metric", "scope", "window", "min calls", "threshold", "for",
                   "severity", "status"):  # fmt: skip
        table.add_column(column)
    for rule in settings.alerts:
        status = "on" if rule.enabled else "off"
        if rule.name in silences:
            status += f", silenced until {iso_utc(silences[rule.name])}"
        table.add_row(
            rule.name, rule.metric, rule.scope_label + (" per to" if rule.per else ""),
            format_span(rule.window), str(rule.min_calls), _thresholds(rule),
            format_span(rule.for_), rule.severity, status,
        )  # fmt: skip
    console = Console()
    console.print(table)
    console.print(_items_table("active alerts", shown.active))


@alerts.command("history")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 500))
@click.option("--rule", default=None, help="Only this rule's transitions.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@click.pass_context
def alerts_history(ctx: click.Context, limit: int, rule: str | None, as_json: bool) -> None:
    """Alert transitions (pending, firing, resolved), newest first.

    Example: callpulse alerts history --rule low-mos --limit 20
    """
    with store_of(ctx) as store:
        store.upgrade()
        shown = overview(store, datetime.now(UTC), limit=limit, rule=rule)
    if as_json:
        for item in shown.history:
            click.echo(_item_json(item))
        return
    Console().print(_items_table("alert history", shown.history))


@alerts.command("evaluate")
@click.option(
    "--at",
    "at",
    callback=parse_moment,
    help="Evaluate as of this time (ISO 8601 or an age such as 1h); default now.",
)
@click.pass_context
def alerts_evaluate(ctx: click.Context, at: datetime | None) -> None:
    """Run one evaluation round now, then send the notifications due.

    Example: callpulse alerts evaluate
    """
    settings = settings_of(ctx)
    now = at or datetime.now(UTC)
    webhook = webhook_of(settings)
    with store_of(ctx) as store:
        store.upgrade()
        report = run_round(
            store, Analytics(store, settings), settings.alerts, now, dashboard_url(settings),
            queue=webhook is not None,
        )  # fmt: skip
        delivery = None if webhook is None else deliver_due(store, webhook, now)
    if not report.ran:
        click.echo("another process is evaluating this round: nothing done")
        return
    for t in report.transitions:
        click.echo(f"{t.rule} {t.scope}: {t.from_state} -> {t.to_state} (value {t.value})")
    click.echo(
        f"{len(report.transitions)} transitions, {report.notifications} notifications queued"
        + ("" if delivery is None else f", {delivery.delivered} sent, {delivery.failed} failed")
    )


@alerts.command("test")
@click.argument("rule_name", metavar="RULE")
@click.pass_context
def alerts_test(ctx: click.Context, rule_name: str) -> None:
    """Send a sample notification of RULE to the webhook.

    Example: callpulse alerts test low-mos
    """
    settings = settings_of(ctx)
    rule = _rule(settings, rule_name)
    webhook = webhook_of(settings)
    if webhook is None:
        raise CallpulseError("CALLPULSE_ALERT_WEBHOOK_URL: not set, so there is nowhere to send")
    now = datetime.now(UTC)
    sample = Transition(rule.name, "test", OK, FIRING, now, rule.trigger, rule.trigger, now,
                        rule.severity)  # fmt: skip
    body = payload(sample, rule, dashboard_url(settings))
    body["text"] = "[TEST] " + body["text"]
    body["test"] = True
    with httpx.Client() as client:
        webhook.post(client, json.dumps(body, separators=(",", ":")))
    click.echo(f"sent a sample notification of {rule.name} to {webhook.url}")


@alerts.command("silence")
@click.argument("rule_name", metavar="RULE")
@click.option(
    "--for", "span", required=True, callback=parse_age, help="How long, such as 2h or 30m."
)
@click.pass_context
def alerts_silence(ctx: click.Context, rule_name: str, span: timedelta) -> None:
    """Hold RULE's notifications for a while (it is still evaluated and its history kept).

    Example: callpulse alerts silence volume --for 2h
    """
    rule = _rule(settings_of(ctx), rule_name)
    now = datetime.now(UTC)
    with store_of(ctx) as store:
        store.upgrade()
        with store.alert_book() as book:
            assert book is not None
            book.silence(rule.name, now + span, now)
    click.echo(f"{rule.name} silenced until {iso_utc(now + span)}")


@alerts.command("unsilence")
@click.argument("rule_name", metavar="RULE")
@click.pass_context
def alerts_unsilence(ctx: click.Context, rule_name: str) -> None:
    """End RULE's silence.

    Example: callpulse alerts unsilence volume
    """
    with store_of(ctx) as store:
        store.upgrade()
        with store.alert_book() as book:
            assert book is not None
            removed = book.unsilence(rule_name)
    click.echo(f"{rule_name} unsilenced" if removed else f"{rule_name} was not silenced")
