"""Alert rules as data and a pure engine that turns events (instant rules) and final
minutes (window rules), and watch sensors' health (silent and stuck rules)."""

from streams.alerts.engine import Evaluation, RuleEngine, evaluate_rule, last_final_minute
from streams.alerts.rules import (
    AnyRuleModel,
    InstantRule,
    Rule,
    RuleError,
    SilentRule,
    StuckRule,
    load_rule_file,
    load_rules,
)
from streams.alerts.transitions import AlertTransition, alert_id

__all__ = [
    "AlertTransition",
    "AnyRuleModel",
    "Evaluation",
    "InstantRule",
    "Rule",
    "RuleEngine",
    "RuleError",
    "SilentRule",
    "StuckRule",
    "alert_id",
    "evaluate_rule",
    "last_final_minute",
    "load_rule_file",
    "load_rules",
]
