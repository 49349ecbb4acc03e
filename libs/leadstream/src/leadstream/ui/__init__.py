"""``leadstream ui``: a Kafka UI in the browser (kaskade served by textual-serve)."""

from leadstream.ui.kaskade import KASKADE, TEXTUAL_SERVE, UiPlan, kaskade_args, plan_ui

__all__ = ["KASKADE", "TEXTUAL_SERVE", "UiPlan", "kaskade_args", "plan_ui"]
