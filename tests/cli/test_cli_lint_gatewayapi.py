"""`autopilot lint` checks Gateway API canaries (`provider: gatewayapi:v1`) offline too."""

from __future__ import annotations

from cli.errors import Exit
from tests.canary.test_gatewayapi_routes import FLAGGER_GATEWAY_API


async def test_flaggers_gateway_api_manifest_passes_lint_unchanged(autopilot, tmp_path):
    path = tmp_path / "flagger-gatewayapi.yaml"
    path.write_text(FLAGGER_GATEWAY_API)

    result = await autopilot("lint", str(path))

    assert result.exit_code == Exit.OK, result.output
    assert "1 document(s) checked, 0 invalid" in result.stderr


async def test_an_istio_field_on_a_gateway_api_canary_fails_lint_naming_it(autopilot, tmp_path):
    path = tmp_path / "canary.yaml"
    path.write_text(
        FLAGGER_GATEWAY_API.replace(
            "    gatewayRefs:", "    gateways: [istio-system/public]\n    gatewayRefs:"
        )
    )

    result = await autopilot("lint", str(path))

    assert result.exit_code == Exit.INVALID
    assert result.stdout.strip() == (
        f"{path}:doc 1: spec.service.gateways: not supported with provider gatewayapi:v1; "
        "list the Gateways in service.gatewayRefs"
    )
