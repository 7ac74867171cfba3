"""Analytics: segmentation, churn risk, metrics with trends, co-purchase rules."""
