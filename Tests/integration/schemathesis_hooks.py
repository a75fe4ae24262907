"""schemathesis has no serializer for SDP bodies; with this one, WHIP/WHEP and the echo
endpoint get random offers too. Loaded through SCHEMATHESIS_HOOKS."""
import schemathesis


@schemathesis.serializer("application/sdp")
def sdp_serializer(ctx, value):
    if isinstance(value, bytes):
        return value
    return str(value).encode("utf-8", errors="surrogatepass")
