"""CLI: `grim payments serve|sandbox-gateway|simulate-payment`, `grim products ...`,
`grim gateways ...`."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from grim.cli.errors import fail, handle_errors

T = TypeVar("T")
console = Console()
app = typer.Typer(no_args_is_help=True, help="Payments service: PIX charges, webhooks, delivery.")
products_app = typer.Typer(no_args_is_help=True, help="Products and prices (payments).")
gateways_app = typer.Typer(no_args_is_help=True, help="Payment gateway accounts (payments).")


def _settings():  # type: ignore[no-untyped-def]
    from .settings import PaymentsSettings

    return PaymentsSettings()


@app.command("serve")
def serve(
    host: str = typer.Option(None, help="Bind address (default GRIM_PAYMENTS_HOST or 127.0.0.1)"),
    port: int = typer.Option(None, help="Port (default GRIM_PAYMENTS_PORT or 8103)"),
) -> None:
    """Run the payments API with its outbox relay and expiry reconciliation."""
    import uvicorn

    from grim.logs import configure_logging

    from .app import create_app

    settings = _settings()
    configure_logging("payments", settings.log_level)
    uvicorn.run(create_app(settings), host=host or settings.payments_host,
                port=port or settings.payments_port, log_config=None)


@app.command("sandbox-gateway")
def sandbox_gateway(
    host: str = typer.Option("127.0.0.1", help="Bind address"),
    port: int = typer.Option(None, help="Port (default GRIM_SANDBOX_PORT or 8203)"),
    webhook_secret: str = typer.Option(
        None, envvar="GRIM_SANDBOX_WEBHOOK_SECRET",
        help="Secret that signs webhooks; register the same one on the sandbox gateway account"),
) -> None:
    """Run the sandbox PIX gateway (BR Codes, simulated payments, signed webhooks)."""
    import uvicorn

    from grim.logs import configure_logging
    from grim.sandbox.pix_sandbox import create_sandbox_app

    settings = _settings()
    configure_logging("pix-sandbox", settings.log_level)
    uvicorn.run(create_sandbox_app(webhook_secret or settings.sandbox_webhook_secret),
                host=host, port=port or settings.sandbox_port, log_config=None)


@app.command("simulate-payment")
@handle_errors
def simulate_payment(
    charge: str = typer.Argument(..., help="Grim payment id (pay_...) or sandbox charge id"),
    payer_name: str = typer.Option(None), payer_email: str = typer.Option(None),
    payer_document: str = typer.Option(None),
) -> None:
    """Pay a sandbox charge as a buyer would; the sandbox then calls the webhook."""
    import httpx

    payer = {k: v for k, v in {"name": payer_name, "email": payer_email,
                               "document": payer_document}.items() if v}
    url = f"{_settings().sandbox_api_base.rstrip('/')}/v1/charges/{charge}/simulate-payment"
    response = httpx.post(url, json={"payer": payer or None}, timeout=15)
    if response.status_code >= 400:
        fail(f"sandbox answered {response.status_code}: {response.text[:300]}")
    console.print(response.json().get("webhook"))


def _run(work: Callable[[Any, Any], Awaitable[T]]) -> T:
    from grim.crypto import SecretBox
    from grim.db import create_pool

    async def main() -> T:
        settings = _settings()
        pool = await create_pool(settings.database_url, max_size=2)
        try:
            return await work(pool, SecretBox(settings.secret_key.get_secret_value()))
        finally:
            await pool.close()

    return asyncio.run(main())


def _cents(price: str) -> int:
    from .money import InvalidAmount, reais_to_cents

    try:
        return reais_to_cents(price.replace(",", "."))
    except InvalidAmount as exc:
        raise ValueError(f"price: {exc}") from exc


def _show_products(products: list[Any]) -> None:
    from .money import format_reais

    table = Table("id", "name", "price (R$)", "account", "expires (s)", "enabled")
    for p in products:
        table.add_row(str(p.id), p.name, format_reais(p.price_cents), str(p.gateway_account_id),
                      str(p.expires_in_seconds), "yes" if p.enabled else "no")
    console.print(table)


@products_app.command("add")
@handle_errors
def products_add(
    name: str = typer.Option(...), price: str = typer.Option(..., help="In reais, e.g. 19.90"),
    gateway_account: int = typer.Option(..., help="Gateway account id (grim gateways list)"),
    delivery: str = typer.Option("", help="What the delivery page shows (text or link)"),
    expires_in: int = typer.Option(1800, help="Seconds a PIX charge stays payable"),
) -> None:
    """Add a product."""
    from . import catalog

    product = _run(lambda pool, _: catalog.add_product(
        pool, name=name, price_cents=_cents(price), gateway_account_id=gateway_account,
        delivery_content=delivery, expires_in_seconds=expires_in))
    _show_products([product])


@products_app.command("list")
@handle_errors
def products_list() -> None:
    """List products."""
    from . import catalog

    _show_products(_run(lambda pool, _: catalog.list_products(pool)))


@products_app.command("update")
@handle_errors
def products_update(
    product_id: int = typer.Argument(...), name: str = typer.Option(None),
    price: str = typer.Option(None, help="In reais"), gateway_account: int = typer.Option(None),
    delivery: str = typer.Option(None), expires_in: int = typer.Option(None),
    enabled: bool = typer.Option(None, "--enabled/--disabled"),
) -> None:
    """Change a product (only the options given)."""
    from . import catalog

    product = _run(lambda pool, _: catalog.update_product(
        pool, product_id, name=name, price_cents=_cents(price) if price else None,
        gateway_account_id=gateway_account, delivery_content=delivery,
        expires_in_seconds=expires_in, enabled=enabled))
    _show_products([product])


@gateways_app.command("add")
@handle_errors
def gateways_add(
    name: str = typer.Option(...),
    gateway: str = typer.Option(..., help="mercadopago | pushinpay | woovi | sandbox"),
    credential: list[str] = typer.Option(
        ..., help="key=value, repeatable: access_token= (mercadopago), token= (pushinpay), "
                  "app_id= (woovi), api_key= (sandbox)"),
    webhook_secret: str = typer.Option(None, envvar="GRIM_GATEWAY_WEBHOOK_SECRET",
                                       help="Signing secret (mercadopago, sandbox)"),
    pix_key: str = typer.Option(None, help="PIX key (sandbox BR Codes)"),
) -> None:
    """Register a gateway account (secrets stored encrypted with GRIM_SECRET_KEY)."""
    from . import catalog

    credentials: dict[str, str] = {}
    for item in credential:
        key, sep, value = item.partition("=")
        if not sep or not key or not value:
            fail(f"--credential expects key=value, got {item!r}")
        credentials[key] = value
    info = _run(lambda pool, box: catalog.add_account(
        pool, box, name=name, gateway=gateway, credentials=credentials,
        webhook_secret=webhook_secret, pix_key=pix_key))
    console.print(f"account {info.id} ({info.gateway}) added; webhook URL: "
                  f"{_settings().webhook_url(info.gateway, info.id)}")


@gateways_app.command("list")
@handle_errors
def gateways_list() -> None:
    """List gateway accounts (secrets never shown)."""
    from . import catalog

    settings = _settings()
    table = Table("id", "name", "gateway", "webhook secret", "enabled", "webhook URL")
    for a in _run(lambda pool, _: catalog.list_accounts(pool)):
        table.add_row(str(a.id), a.name, a.gateway, "set" if a.has_webhook_secret else "-",
                      "yes" if a.enabled else "no", settings.webhook_url(a.gateway, a.id))
    console.print(table)
