"""Plan: turn campaigns into dated slots, within the stakeholders' contact budgets."""
