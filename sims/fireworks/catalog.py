"""The public model catalog (``accounts/fireworks/models``) and the deployment shapes for it.

Model ids are real public Fireworks ids; sizes and context lengths are the published figures
(rounded where the exact parameter count is not published).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from .wire import ts

PUBLIC_ACCOUNT = "fireworks"

ACCELERATOR_TYPES = (
    "ACCELERATOR_TYPE_UNSPECIFIED", "NVIDIA_A100_80GB", "NVIDIA_H100_80GB", "AMD_MI300X_192GB",
    "NVIDIA_A10G_24GB", "NVIDIA_A100_40GB", "NVIDIA_L4_24GB", "NVIDIA_H200_141GB", "NVIDIA_B200_180GB",
    "AMD_MI325X_256GB", "AMD_MI350X_288GB", "NVIDIA_B300_288GB",
)
PRECISIONS = (
    "PRECISION_UNSPECIFIED", "FP16", "FP8", "FP8_MM", "FP8_AR", "FP8_MM_KV_ATTN", "FP8_KV", "FP8_MM_V2",
    "FP8_V2", "FP8_MM_KV_ATTN_V2", "NF4", "FP4", "BF16", "FP4_BLOCKSCALED_MM", "FP4_MX_MOE",
)
MULTI_REGIONS = ("MULTI_REGION_UNSPECIFIED", "GLOBAL", "US", "EUROPE", "APAC")
# The Region enum: the SDK's and the OpenAPI document's values together (contract §2.2 calls it open;
# the simulator, like a server, knows the ones it knows and refuses the rest).
REGIONS = (
    "REGION_UNSPECIFIED", "US_IOWA_1", "US_VIRGINIA_1", "US_VIRGINIA_2", "US_ILLINOIS_1", "AP_TOKYO_1",
    "EU_LONDON_1", "US_ARIZONA_1", "US_TEXAS_1", "US_ILLINOIS_2", "EU_FRANKFURT_1", "US_TEXAS_2", "EU_PARIS_1",
    "EU_HELSINKI_1", "US_NEVADA_1", "EU_ICELAND_1", "EU_ICELAND_2", "US_WASHINGTON_1", "US_WASHINGTON_2",
    "EU_ICELAND_DEV_1", "US_WASHINGTON_3", "US_ARIZONA_2", "AP_TOKYO_2", "US_CALIFORNIA_1", "US_MISSOURI_1",
    "US_UTAH_1", "US_TEXAS_3", "US_ARIZONA_3", "US_GEORGIA_1", "US_GEORGIA_2", "US_WASHINGTON_4", "US_GEORGIA_3",
    "NA_BRITISHCOLUMBIA_1", "US_GEORGIA_4", "EU_ICELAND_3", "US_OHIO_1", "US_NEWYORK_1", "EU_NETHERLANDS_1",
    "US_WASHINGTON_5", "US_MINNESOTA_1", "US_CALIFORNIA_2", "AP_MALAYSIA_1", "US_OHIO_2",
)
DIRECT_ROUTE_TYPES = ("DIRECT_ROUTE_TYPE_UNSPECIFIED", "INTERNET", "GCP_PRIVATE_SERVICE_CONNECT", "AWS_PRIVATELINK")
BUCKET_TYPES = ("BUCKET_TYPE_UNSPECIFIED", "MINIO", "S3", "NEBIUS", "FW_HOSTED")
MODEL_KINDS = (
    "KIND_UNSPECIFIED", "HF_BASE_MODEL", "HF_PEFT_ADDON", "HF_TEFT_ADDON", "FLUMINA_BASE_MODEL",
    "FLUMINA_ADDON", "DRAFT_ADDON", "FIRE_AGENT", "LIVE_MERGE", "CUSTOM_MODEL", "EMBEDDING_MODEL",
    "SNAPSHOT_MODEL",
)

# Catalog entries were "created" long before any simulated deployment.
CATALOG_CREATE_TIME = 1704067200.0  # 2024-01-01T00:00:00Z


@dataclass(frozen=True)
class CatalogModel:
    """One public base model and what the simulator needs to know to serve it."""

    id: str
    display_name: str
    parameter_count: int
    context_length: int
    model_type: str
    supports_lora: bool
    min_gpus: int  # H100s per replica at FP8: the "estimated minimum" default accelerator count
    moe: bool = False
    supports_tools: bool = True
    supports_image_input: bool = False
    # Speculative decoding a deployment gets unless it sets its own or disables it (the Model's
    # defaultDraftModel / defaultDraftTokenCount).
    default_draft_model: str = ""
    default_draft_token_count: int = 0

    @property
    def name(self) -> str:
        return f"accounts/{PUBLIC_ACCOUNT}/models/{self.id}"


CATALOG: tuple[CatalogModel, ...] = (
    CatalogModel("llama-v3p1-8b-instruct", "Llama 3.1 8B Instruct", 8_030_261_248, 131072, "llama", True, 1),
    CatalogModel("llama-v3p1-70b-instruct", "Llama 3.1 70B Instruct", 70_553_706_496, 131072, "llama", True, 2),
    CatalogModel("llama-v3p1-405b-instruct", "Llama 3.1 405B Instruct", 405_853_388_800, 131072, "llama", True, 8),
    CatalogModel("llama-v3p2-3b-instruct", "Llama 3.2 3B Instruct", 3_212_749_824, 131072, "llama", True, 1),
    # assumption: Fireworks publishes no model's default draft model; this one gets one (its family's
    # 3B, 4 tokens per step, as Fireworks' speculative-decoding guide pairs Llama models) so that
    # deployments show what --disable-speculative-decoding turns off.
    CatalogModel("llama-v3p3-70b-instruct", "Llama 3.3 70B Instruct", 70_553_706_496, 131072, "llama", True, 2,
                 default_draft_model=f"accounts/{PUBLIC_ACCOUNT}/models/llama-v3p2-3b-instruct",
                 default_draft_token_count=4),
    CatalogModel("qwen2p5-72b-instruct", "Qwen2.5 72B Instruct", 72_706_203_648, 32768, "qwen2", True, 2),
    CatalogModel("qwen2p5-coder-32b-instruct", "Qwen2.5 Coder 32B Instruct", 32_763_876_352, 32768, "qwen2",
                 True, 1),
    CatalogModel("qwen3-8b", "Qwen3 8B", 8_190_735_360, 40960, "qwen3", True, 1),
    CatalogModel("qwen3-235b-a22b", "Qwen3 235B A22B", 235_093_634_560, 131072, "qwen3_moe", False, 4,
                 moe=True),
    CatalogModel("deepseek-v3", "DeepSeek V3", 671_026_419_200, 131072, "deepseek_v3", False, 8, moe=True),
    CatalogModel("deepseek-r1", "DeepSeek R1", 671_026_419_200, 163840, "deepseek_v3", False, 8, moe=True),
    CatalogModel("mixtral-8x7b-instruct", "Mixtral 8x7B Instruct", 46_702_792_704, 32768, "mixtral", True, 2,
                 moe=True),
    CatalogModel("gemma-3-27b-it", "Gemma 3 27B Instruct", 27_432_406_640, 131072, "gemma3", True, 1,
                 supports_image_input=True),
    CatalogModel("gpt-oss-20b", "OpenAI gpt-oss-20b", 20_914_757_184, 131072, "gpt_oss", False, 1, moe=True),
    CatalogModel("gpt-oss-120b", "OpenAI gpt-oss-120b", 116_829_156_672, 131072, "gpt_oss", False, 1, moe=True),
    CatalogModel("kimi-k2-instruct", "Kimi K2 Instruct", 1_026_408_232_448, 131072, "deepseek_v3", False, 8,
                 moe=True),
)
CATALOG_BY_NAME = {m.name: m for m in CATALOG}


def catalog_model_wire(m: CatalogModel, deployed_refs: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """A catalog model as the gateway's Model message."""
    return {
        "name": m.name,
        "displayName": m.display_name,
        "description": f"{m.display_name} (simulated catalog entry)",
        "createTime": ts(CATALOG_CREATE_TIME),
        "updateTime": ts(CATALOG_CREATE_TIME),
        "state": "READY",
        "status": {"code": "OK", "message": ""},
        "kind": "HF_BASE_MODEL",
        "githubUrl": "",
        "huggingFaceUrl": "",
        "baseModelDetails": {
            "worldSize": m.min_gpus,
            "checkpointFormat": "HUGGINGFACE",
            "parameterCount": str(m.parameter_count),
            "moe": m.moe,
            "tunable": m.supports_lora,
            "modelType": m.model_type,
            "supportsFireattention": True,
            "defaultPrecision": "FP8",
            "supportsMtp": False,
        },
        "public": True,
        "contextLength": m.context_length,
        "supportsImageInput": m.supports_image_input,
        "supportsTools": m.supports_tools,
        "importedFrom": "",
        "fineTuningJob": "",
        "defaultDraftModel": m.default_draft_model,
        "defaultDraftTokenCount": m.default_draft_token_count,
        "deployedModelRefs": deployed_refs or [],
        "cluster": "",
        "calibrated": True,
        "tunable": m.supports_lora,
        "supportsLora": m.supports_lora,
        "useHfApplyChatTemplate": False,
        "rlTunable": False,
        "trainingContextLength": 0,
        "supportsServerless": False,
        "supervisedLoraTunable": m.supports_lora,
        "supervisedFullParameterTunable": False,
        "rlLoraTunable": False,
        "rlFullParameterTunable": False,
    }


# --- deployment shapes -------------------------------------------------------------------------

@dataclass(frozen=True)
class Shape:
    """A validated deployment shape for one base model, with its single (latest) version."""

    model: CatalogModel
    preset: str
    accelerator_type: str
    accelerator_count: int
    precision: str
    enable_addons: bool

    @property
    def shape_id(self) -> str:
        suffix = "multi-lora" if self.enable_addons else self.preset.lower()
        return f"{self.model.id}-{suffix}"

    @property
    def name(self) -> str:
        return f"accounts/{PUBLIC_ACCOUNT}/deploymentShapes/{self.shape_id}"

    @property
    def version_id(self) -> str:
        # Real version ids are opaque; a stable digest keeps them deterministic across restarts.
        return "v" + hashlib.sha256(self.shape_id.encode()).hexdigest()[:7]

    @property
    def version_name(self) -> str:
        return f"{self.name}/versions/{self.version_id}"

    def wire(self) -> dict[str, Any]:
        """The DeploymentShape message."""
        return {
            "name": self.name,
            "displayName": f"{self.model.display_name} {self.preset.title()}"
            + (" multi-LoRA" if self.enable_addons else ""),
            "description": "",
            "createTime": ts(CATALOG_CREATE_TIME),
            "updateTime": ts(CATALOG_CREATE_TIME),
            "baseModel": self.model.name,
            "modelType": self.model.model_type,
            "parameterCount": str(self.model.parameter_count),
            "acceleratorCount": self.accelerator_count,
            "acceleratorType": self.accelerator_type,
            "precision": self.precision,
            "disableDeploymentSizeValidation": False,
            "enableAddons": self.enable_addons,
            "draftTokenCount": 0,
            "draftModel": "",
            "ngramSpeculationLength": 0,
            "disableSpeculativeDecoding": False,
            "enableSessionAffinity": False,
            "numLoraDeviceCached": 4 if self.enable_addons else 0,
            "maxContextLength": 0,
            "presetType": self.preset,
        }

    def version_wire(self) -> dict[str, Any]:
        """The DeploymentShapeVersion message."""
        return {
            "name": self.version_name,
            "createTime": ts(CATALOG_CREATE_TIME),
            "snapshot": self.wire(),
            "validated": True,
            "public": True,
            "latestValidated": True,
        }


def shapes_for(m: CatalogModel) -> list[Shape]:
    """MINIMAL / FAST / THROUGHPUT presets, plus a BF16 multi-LoRA shape for LoRA-capable models.

    # assumption: MINIMAL is the estimated minimum of H100s at FP8, FAST doubles it, THROUGHPUT uses
    # the same count on H200; addon shapes are BF16 (3P: addons only work on BF16 shapes) with twice
    # the MINIMAL GPUs for the larger weights.
    """
    n = m.min_gpus
    shapes = [
        Shape(m, "MINIMAL", "NVIDIA_H100_80GB", n, "FP8", False),
        Shape(m, "FAST", "NVIDIA_H100_80GB", min(n * 2, 8), "FP8", False),
        Shape(m, "THROUGHPUT", "NVIDIA_H200_141GB", n, "FP8", False),
    ]
    if m.supports_lora:
        shapes.append(Shape(m, "MINIMAL", "NVIDIA_H100_80GB", min(n * 2, 8), "BF16", True))
    return shapes


ALL_SHAPES: tuple[Shape, ...] = tuple(s for m in CATALOG for s in shapes_for(m))
SHAPES_BY_ID = {s.shape_id: s for s in ALL_SHAPES}


def resolve_shape(ref: str) -> Shape | None:
    """A shape from its name or version name (the version must be the current one)."""
    prefix = f"accounts/{PUBLIC_ACCOUNT}/deploymentShapes/"
    if not ref.startswith(prefix):
        return None
    rest = ref[len(prefix):].split("/")
    shape = SHAPES_BY_ID.get(rest[0])
    if shape is None:
        return None
    if len(rest) == 1:
        return shape
    if len(rest) == 3 and rest[1] == "versions" and rest[2] == shape.version_id:
        return shape
    return None


def default_shape(m: CatalogModel, enable_addons: bool) -> Shape | None:
    """What ``deploymentShape: "default"`` resolves to.

    # assumption: the MINIMAL preset, or the multi-LoRA shape when enable_addons is set.
    """
    for s in shapes_for(m):
        if s.preset == "MINIMAL" and s.enable_addons == enable_addons:
            return s
    return None
