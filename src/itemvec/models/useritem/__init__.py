"""User-item models: they learn from ratings or implicit feedback (``prepare ratings``) and answer ``predict``,
``score_users``, ``recommend`` and ``similar_items``. base.py holds what they share (``UserItemModel``, the
torch steps); each other file is one family: explicit (baselines and explicit MF), dense, lstm, popularity,
implicit (BPR, WARP, ALS), neighbours (ItemKNN, RP3beta, EASE), triplet (triplet, deep triplet), fm."""
