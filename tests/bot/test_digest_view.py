"""The digest's model section names the algorithm that scores each model in use and why its backtest
chose it (model/backtest.choose), in both languages, escaped; nothing when the rules decide."""

from __future__ import annotations

from datetime import UTC, date, datetime

from bot.i18n import translator
from bot.render_text import render_blocks
from bot.views.digest import digest_blocks
from digest.report import build
from settings import Rules
from storage import Database
from storage.models import ChurnModel, ModelDecision
from tests.blockkit import check_blocks
from tests.digest.test_kpi import AS_OF, history

RULES = Rules.load(None)
NOW = datetime(2026, 11, 20, tzinfo=UTC)
BACKTEST = {
    "weeks": {"first": "2026-06-07", "last": "2026-08-16", "data_through": "2026-11-15"},
    "model": {"churn_recall_7_90d": 0.7, "churn_alerts_per_100_week": 1.4, "auc_30d": 0.88},
    "rules": {"churn_recall_7_90d": 0.4, "churn_alerts_per_100_week": 1.9, "auc_30d": 0.74},
    "algorithm": {"algorithm": "gradient_boosting", "why": "beats_regression"},
    "upsell_algorithm": {"algorithm": "logistic_regression", "why": "regression_better"},
}


def _model(s, kind: str, algorithm: str, backtest: dict) -> ChurnModel:
    row = ChurnModel(
        kind=kind,
        version=1,
        algorithm=algorithm,
        trained_at=NOW,
        data_through=date(2026, 11, 15),
        features=[],
        params={},
        threshold=0.1,
        budget=1.5,
        backtest=backtest,
        training={"rows": 100, "weeks": 30, "events": 25, "positives": 30},
    )
    s.add(row)
    s.flush()
    return row


def _decided(s, kind: str, by: str, row: ChurnModel | None) -> None:
    why = "beats_rules" if by == "model" else "rules_better"
    s.add(
        ModelDecision(
            kind=kind, decided_by=by, why=why, model_id=row.id if row else None, params={}, decided_at=NOW
        )
    )


def _texts(node: object) -> list[str]:
    """Every text of the blocks, as Slack gets it (no wrapping)."""
    if isinstance(node, dict):
        return (
            [node["text"]]
            if isinstance(node.get("text"), str)
            else [t for v in node.values() for t in _texts(v)]
        )
    return [t for v in node for t in _texts(v)] if isinstance(node, list) else []


def _text(db: Database, locale: str) -> str:
    with db.session() as s:
        report = build(s, AS_OF, RULES)
    blocks = digest_blocks(translator(locale), report)
    assert check_blocks(blocks, where=locale) == []
    assert render_blocks(blocks)  # and it renders as text
    return "\n".join(_texts(blocks))


def test_the_digest_names_the_algorithm_of_each_model_in_use_in_both_languages(db: Database) -> None:
    history(db)
    with db.session() as s:
        churn = _model(s, "churn", "gradient_boosting", BACKTEST)
        upsell = _model(s, "upsell", "logistic_regression", BACKTEST)
        _decided(s, "churn_risk", "model", churn)
        _decided(s, "upsell", "model", upsell)
    en = _text(db, "en")
    assert (
        "Churn model: gradient boosting (its backtest beat the regression on both AUC and top-decile lift)."
        " Upsell model: logistic regression (gradient boosting did not beat it on AUC and top-decile lift"
        " together)." in en
    )
    assert en.index("Last backtest") < en.index("Churn model: gradient boosting")  # below the figures
    ja = _text(db, "ja")
    assert "解約予測モデル：勾配ブースティング（バックテストでAUC・上位10%リフトともに" in ja
    assert (
        "アップセル予測モデル：ロジスティック回帰（勾配ブースティングがAUC・上位10%リフトのいずれかで" in ja
    )


def test_no_algorithm_line_while_the_rules_decide(db: Database) -> None:
    history(db)
    with db.session() as s:
        churn = _model(s, "churn", "gradient_boosting", BACKTEST)
        _decided(s, "churn_risk", "model", churn)
        _decided(s, "churn_risk", "rules", churn)  # a retrained model did worse: the rules took back over
        _model(s, "upsell", "logistic_regression", BACKTEST)  # stored, never switched to
    en, ja = _text(db, "en"), _text(db, "ja")
    assert "Last backtest" in en and "直近のバックテスト" in ja  # the figures are still told
    assert "Churn model:" not in en and "Upsell model:" not in en
    assert "解約予測モデル" not in ja and "アップセル予測モデル" not in ja


def test_only_the_kind_the_model_decides_is_named(db: Database) -> None:
    history(db)
    with db.session() as s:
        _model(s, "churn", "logistic_regression", {})  # the rules decide churn (never switched)
        upsell = _model(s, "upsell", "gradient_boosting", {**BACKTEST, "upsell_algorithm": {}})
        _decided(s, "upsell", "model", upsell)
    en, ja = _text(db, "en"), _text(db, "ja")
    assert "Upsell model: gradient boosting." in en and "Churn model:" not in en  # no reason recorded
    assert "アップセル予測モデル：勾配ブースティング。" in ja and "解約予測モデル" not in ja


def test_stored_text_reaches_slack_escaped(db: Database) -> None:
    history(db)
    with db.session() as s:
        hostile = {**BACKTEST, "algorithm": {"why": "<!channel>"}}
        churn = _model(s, "churn", "<!channel> & <@U123>", hostile)
        _decided(s, "churn_risk", "model", churn)
    with db.session() as s:
        report = build(s, AS_OF, RULES)
    for locale in ("en", "ja"):
        raw = str(digest_blocks(translator(locale), report))
        assert "&lt;!channel&gt; &amp; &lt;@U123&gt;" in raw and "<!channel>" not in raw
