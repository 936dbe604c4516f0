"""[pricing] and the exact sums made from it."""

from __future__ import annotations

import pytest

from starpod_cron.config import parse_config
from starpod_cron.errors import ConfigError
from starpod_cron.models import ModelUsage
from starpod_cron.pricing import PICO, estimate_input_tokens, format_usd, picodollars, usd

TOML = """
[pricing]
default_output_tokens = 300
"gpt-4o-mini" = { input_per_mtok = 0.15, output_per_mtok = 0.60 }
"big" = { input_per_mtok = 2.5, output_per_mtok = 10, cached_input_per_mtok = 1.25 }
"""


def test_costs_are_exact_picodollars_and_sum_without_drift() -> None:
    pricing = parse_config(TOML).pricing
    assert pricing.default_output_tokens == 300
    run = pricing.cost([ModelUsage("gpt-4o-mini", 1000, 500)])
    assert run == 150 * 1000 * 1000 + 600 * 1000 * 500  # 0.00045 $
    assert sum([run] * 10_000) == 4_500_000_000_000 and usd(run * 10_000) == 4.5  # type: ignore[operator]
    both = pricing.cost([ModelUsage("gpt-4o-mini", 1000, 500), ModelUsage("big", 2000, 100, 1000)])
    assert both == run + 1000 * 2_500_000 + 1000 * 1_250_000 + 100 * 10_000_000  # type: ignore[operator]


def test_unknown_is_never_zero() -> None:
    pricing = parse_config(TOML).pricing
    assert pricing.cost([ModelUsage("unpriced", 10, 10)]) is None
    assert pricing.cost([ModelUsage("gpt-4o-mini", None, 10)]) is None
    assert pricing.cost([]) == 0  # no model asked: nothing spent
    assert format_usd(None) == "cost unknown"
    assert format_usd(picodollars(0.002)) == "$0.0020"
    assert PICO == 10**12 and estimate_input_tokens("héllo") == 2


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[pricing]\nfoo = 1", "'foo' must be a table"),
        ('[pricing]\n"m" = {input_per_mtok = -1, output_per_mtok = 1}', "input_per_mtok"),
        ('[pricing]\n"m" = {input_per_mtok = 1}', "missing required key 'output_per_mtok'"),
        ('[pricing]\n"m" = {input_per_mtok = 1, output_per_mtok = 1, x = 1}', "unknown key 'x'"),
        ('[pricing]\ndefault_output_tokens = "a"', "default_output_tokens"),
    ],
)
def test_bad_pricing_names_the_key(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_config(text)
