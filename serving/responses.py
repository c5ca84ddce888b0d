"""The response models of the service's endpoints (serving/service.py): what /docs.json documents and
what every answer is validated against. The request models and limits are in serving/schema.py."""

from __future__ import annotations

from typing import Optional, Union

from pydantic import BaseModel, Field


class ModelInfo(BaseModel):
    name: str = Field(description="Model (bundle) name", examples=["mudraj-e5-small"])
    version: str = Field(description="Bundle version", examples=["2026.11.29"])
    threshold: float = Field(description="The model's default decision threshold", examples=[0.5])
    precision: str = Field(description="int8 (CPU) or fp32", examples=["int8"])
    device: str = Field(description="cpu or cuda", examples=["cpu"])
    backbone: Optional[str] = Field(default=None, description="Encoder the model was fine-tuned from")


class KindScore(BaseModel):
    name: str = Field(
        description="A kind of insertion (see /model_card 'kinds' for their descriptions)",
        examples=["fake_attribution"],
    )
    p: float = Field(description="The kind head's probability for this kind", examples=[0.71])


class Kind(BaseModel):
    name: str = Field(description="The likeliest kind of insertion", examples=["fake_attribution"])
    p: float = Field(description="Its probability (the kind head's softmax over the kinds)", examples=[0.71])
    top: list[KindScore] = Field(description="The three likeliest kinds, most likely first")


KIND_DOC = (
    "What kind of insertion the sentence looks like (bundles with a kind head); only for sentences "
    "labelled 'inserted', null otherwise"
)


class Sentence(BaseModel):
    start: int = Field(description="Offset of the sentence's first character in the text")
    end: int = Field(description="Offset just past its last character: text[start:end] is the sentence")
    text: str = Field(description="The sentence")
    label: str = Field(description="'inserted' (score >= threshold) or 'reporting'", examples=["reporting"])
    score: float = Field(description="Calibrated probability that the sentence is inserted", examples=[0.12])
    kind: Optional[Kind] = Field(default=None, description=KIND_DOC)


class ClassifyResponse(BaseModel):
    model: ModelInfo
    threshold: float = Field(description="The threshold the labels were decided with")
    sentences: list[Sentence] = Field(description="The article's sentences in order")
    inserted: int = Field(description="How many sentences are labelled inserted")
    windowed: list[int] = Field(
        description="Indices of sentences too long for one model input: they were scored in several "
        "windows (never truncated) and their score is the highest window's"
    )
    text: Optional[str] = Field(
        default=None,
        description="The text the offsets refer to, when it differs from the text sent (a leading byte-order "
        "mark or [ ] brackets removed); null otherwise",
    )


class ArticleResult(BaseModel):
    id: Union[str, int] = Field(description="The article's id, as sent")
    sentences: list[Sentence]
    inserted: int
    windowed: list[int]
    text: Optional[str] = Field(
        default=None, description="As in /classify: the text the offsets refer to, if not the one sent"
    )


class BatchResponse(BaseModel):
    model: ModelInfo
    threshold: float
    results: list[ArticleResult] = Field(description="One result per article, in the order sent")


class SentenceScore(BaseModel):
    score: float = Field(description="Calibrated probability that the sentence is inserted")
    label: str = Field(description="'inserted' or 'reporting' at the model's default threshold")


class TextSpan(BaseModel):
    start: int = Field(description="Offset of the first character in its text")
    end: int = Field(description="Offset just past the last character")
    text: str


class Change(BaseModel):
    op: str = Field(description="'replace', 'insert' (only in the published text) or 'delete' (only in the source)")
    published: list[int] = Field(description="[start, end) in the published text (empty for a delete)")
    source: list[int] = Field(description="[start, end) in the source text (empty for an insert)")
    published_text: str
    source_text: str


class ComparedSentence(BaseModel):
    start: int = Field(description="Offset of the sentence in the published text")
    end: int
    text: str
    status: str = Field(
        description="'kept' (as in the source), 'edited' (a source sentence, changed) or "
        "'added' (in no source sentence)",
        examples=["added"],
    )
    similarity: float = Field(
        description="0-100 similarity to its source sentence (100: the same once normalised; 0 for added)"
    )
    source: Optional[TextSpan] = Field(default=None, description="The source sentence it matches, if any")
    changes: list[Change] = Field(default=[], description="Character-level differences, for edited sentences")
    label: str = Field(description="The model's label for the sentence, at the threshold")
    score: float = Field(description="The model's calibrated probability that the sentence is inserted")
    kind: Optional[Kind] = Field(default=None, description=KIND_DOC)


class CompareResponse(BaseModel):
    model: ModelInfo
    threshold: float
    published: list[ComparedSentence] = Field(description="The published text's sentences in order")
    dropped: list[TextSpan] = Field(description="Source sentences that no published sentence matches")
    summary: dict[str, int] = Field(description="How many sentences are kept, edited, added and dropped")
    source_text: Optional[str] = Field(
        default=None, description="As in /classify: the source text the offsets refer to, if not the one sent"
    )
    published_text: Optional[str] = Field(default=None, description="The same for the published text")
