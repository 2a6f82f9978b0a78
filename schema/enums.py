"""GraphQL enums. Names are the contract's; values are what the database stores."""

from __future__ import annotations

from enum import Enum

import strawberry


@strawberry.enum
class OutputType(Enum):
    VIDEO = "video"
    IMAGE = "image"
    TEXT = "text"
    AUDIO = "audio"


@strawberry.enum
class JobStatus(Enum):
    PENDING = "pending"
    PROCESSING = "processing"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


@strawberry.enum(
    description="Which jobs a feed shows. MINE: the viewer's own. PUBLIC: jobs their owners "
    'made public ("Show All"). ALL: everything the viewer may see (own + public; for an '
    "admin, every job). Default: MINE for a signed-in viewer, PUBLIC for an anonymous one."
)
class Scope(Enum):
    MINE = "mine"
    PUBLIC = "public"
    ALL = "all"


@strawberry.enum
class OutputKind(Enum):
    IMAGE = "image"
    VIDEO = "video"
    AUDIO = "audio"
    TEXT = "text"
    FILE = "file"


@strawberry.enum
class SessionStatus(Enum):
    CREATED = "created"
    PROMPTING = "prompting"
    GENERATING_IMAGES = "generating_images"
    REVIEWING_IMAGES = "reviewing_images"
    GENERATING_VIDEOS = "generating_videos"
    REVIEWING_VIDEOS = "reviewing_videos"
    COMPOSING = "composing"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


@strawberry.enum
class ProductCategory(Enum):
    FOOTWEAR = "footwear"
    ACCESSORIES = "accessories"
    ELECTRONICS = "electronics"
    BEAUTY = "beauty"
    APPAREL = "apparel"
    HOME = "home"
    OTHER = "other"


@strawberry.enum
class AssetType(Enum):
    IMAGE = "image"
    VIDEO_CLIP = "video_clip"
    FINAL_VIDEO = "final_video"
    AUDIO = "audio"


@strawberry.enum
class AssetStatus(Enum):
    GENERATING = "generating"
    COMPLETED = "completed"
    FAILED = "failed"
    APPROVED = "approved"
    REJECTED = "rejected"


@strawberry.enum
class ParameterType(Enum):
    STRING = "STRING"
    INT = "INT"
    FLOAT = "FLOAT"
    BOOLEAN = "BOOLEAN"
    SEED = "SEED"
    IMAGE = "IMAGE"
    AUDIO = "AUDIO"
    VIDEO = "VIDEO"


@strawberry.enum
class Role(Enum):
    USER = "user"
    ADMIN = "admin"
