"""GraphQL enums. Statuses and kinds are the shared vocabulary (domain/) wrapped for
GraphQL; names are the contract's, values what the database stores."""

from __future__ import annotations

from enum import Enum

import strawberry

from comfygraph.domain.kinds import OutputType
from comfygraph.domain.statuses import AssetStatus, AssetType, JobStatus, SessionStatus

# Registered as GraphQL enums in place: the schema's enum is the vocabulary's class.
for _vocabulary in (OutputType, JobStatus, SessionStatus, AssetType, AssetStatus):
    strawberry.enum(_vocabulary)


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
class ProductCategory(Enum):
    FOOTWEAR = "footwear"
    ACCESSORIES = "accessories"
    ELECTRONICS = "electronics"
    BEAUTY = "beauty"
    APPAREL = "apparel"
    HOME = "home"
    OTHER = "other"


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
