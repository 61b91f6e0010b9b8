"""The explainer page (`unnoise explain`) and its live server (`unnoise serve`)."""
