"""Base classes for request and response bodies."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class StrictModel(BaseModel):
    """Request bodies: unknown fields are an error, not silently dropped."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class ResponseModel(BaseModel):
    model_config = ConfigDict(from_attributes=True)


# The database stores sequence numbers, offsets and numeric ids as 64-bit integers: a larger number in a
# request is bad input (a 422 naming the parameter), never a 500 from the driver.
INT64_MAX = 2**63 - 1
