"""Money as Stripe counts it: integer minor units plus an ISO 4217 currency.

Most currencies have two decimals (FJD 15.00 is 1500); zero-decimal currencies such as the vatu
(VUV) count whole units (VUV 1,500 is 1500). Stripe's list of zero-decimal currencies.
"""

ZERO_DECIMAL_CURRENCIES = frozenset(
    {
        "BIF",
        "CLP",
        "DJF",
        "GNF",
        "JPY",
        "KMF",
        "KRW",
        "MGA",
        "PYG",
        "RWF",
        "UGX",
        "VND",
        "VUV",
        "XAF",
        "XOF",
        "XPF",
    }
)


def amount_text(amount: int, currency: str) -> str:
    """Minor units in major units, without the currency: 4500 EUR → "45.00", 1500 VUV → "1,500"."""
    if currency.upper() in ZERO_DECIMAL_CURRENCIES:
        return f"{amount:,}"
    return f"{amount / 100:,.2f}"


def money_text(amount: int, currency: str) -> str:
    """ "FJD 45.00", "VUV 1,500": the code first, as on Stripe's own invoices in these markets."""
    return f"{currency.upper()} {amount_text(amount, currency)}"
