"""ModelSelector: picks the best blessed model of several by one metric, for the Pusher."""
