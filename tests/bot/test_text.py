"""The one escaping path: user text, mentions and links."""

from __future__ import annotations

from bot.text import escape, link, mention


def test_user_text_cannot_ping_or_inject_markup() -> None:
    assert escape("<!channel> & <@U123>") == "&lt;!channel&gt; &amp; &lt;@U123&gt;"
    assert mention("U0ABC123") == "<@U0ABC123>" and mention("<!here>") == "&lt;!here&gt;"


def test_links_only_for_clean_https_urls_and_the_label_is_escaped() -> None:
    url = "https://example.slack.com/archives/C1/p1700000001000100"
    assert link(url, "Acme <!channel>") == f"<{url}|Acme &lt;!channel&gt;>"
    assert link(None, "Acme") == "*Acme*"
    assert link("https://x.example/a|<!channel>", "Acme") == "*Acme*"  # would break out of the link
    assert link("javascript:alert(1)", "Acme") == "*Acme*"
