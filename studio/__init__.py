"""The application: submitting, dispatching, running, cancelling and recovering jobs, and
the ad-video session pipeline. Talks to db/, comfy/, storage/ and bus/; knows no GraphQL."""
