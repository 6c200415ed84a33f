"""Alert rules as data and a pure engine that turns events (instant rules) and final
minutes (window rules) into alert transitions."""

from streams.alerts.engine import Evaluation, RuleEngine, evaluate_rule, last_final_minute
from streams.alerts.rules import InstantRule, Rule, RuleError, load_rule_file, load_rules
from streams.alerts.transitions import AlertTransition, alert_id

__all__ = [
    "AlertTransition",
    "Evaluation",
    "InstantRule",
    "Rule",
    "RuleEngine",
    "RuleError",
    "alert_id",
    "evaluate_rule",
    "last_final_minute",
    "load_rule_file",
    "load_rules",
]
