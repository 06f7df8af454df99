"""Alert rules over the call KPIs: rules, a pure evaluator, stored state and notifications."""
