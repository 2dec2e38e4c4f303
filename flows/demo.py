"""A small, deterministic, multilingual demo corpus with known defects, for `winnow demo` and tests.

Every sentence below is the project's own writing. Documents are composed from per-language sentence
templates and vocabularies (about 65% English; German, French, Spanish; a few Chinese and Russian; a
couple in Esperanto, a language the default config does not keep), then a seeded share of them gets
one defect each, so every stage has work: boilerplate lines (C4 line removal), repetition spam
(Gopher repetition), short junk (Gopher word count), `{` code and lorem ipsum (C4), exact
duplicates (dedup_exact), near duplicates, one sentence added (dedup_fuzzy), e-mail and IP
addresses (PII; the private 192.168.0.12 must be kept), mojibake (Unicode repair), control
characters and odd whitespace (normalize). Four malformed records (broken JSON, invalid UTF-8,
`"text": null`, no text field) exercise the read stage's quarantine; they come on top of the
`n_docs` documents. Each record carries `defect` (null for a good document) and `crawl_date`,
which `read` keeps in `meta`, so a funnel can be checked against what was injected.

Output is byte-identical for the same seed: one `random.Random(seed)`, gzip with mtime 0, zstd.
"""

from __future__ import annotations

import gzip
import json
import random
from pathlib import Path

import zstandard

SHARDS = ("demo-000.jsonl", "demo-001.jsonl.gz", "demo-002.jsonl", "demo-003.jsonl.zst")

# ---- sentence templates: {place} {name} {day} {n} {food} {plant} are filled per sentence ---------
EN_TOPICS: dict[str, tuple[str, ...]] = {
    "cooking": (
        "Start by warming a little oil in a heavy pan and let the onions soften slowly over a low heat.",
        "{name} says that the secret of a good {food} is patience, not an expensive list of ingredients.",
        "Most of the work can be done the evening before, which leaves more time for the guests on {day}.",
        "If the mixture looks too dry, add a spoonful of water and stir until it comes together again.",
        "A pinch of salt at the end brings out the flavour of the {food} more than any spice.",
        "Leftovers keep well in the fridge for {n} days and taste even better when warmed through.",
        "The recipe for {food} came from a family in {place} and has changed very little since then.",
        "Serve it with a green salad and a slice of fresh bread to make a simple weekday meal.",
    ),
    "gardening": (
        "Late spring is the right time to plant {plant} once the last frost has passed.",
        "{name} from {place} waters the beds early in the morning so that the leaves dry before noon.",
        "A layer of mulch around the roots keeps the soil moist and stops weeds from taking over.",
        "Gardeners who rotate their crops each year tend to see fewer pests and healthier {plant}.",
        "Compost made from kitchen scraps and dry leaves is ready to use in about {n} weeks.",
        "It is worth checking the underside of the leaves, where aphids like to hide from the sun.",
        "Even a small garden can produce a good harvest of {plant} when the plants get enough light.",
        "Cutting back the old stems in autumn helps the plant to grow stronger the following year.",
    ),
    "travel": (
        "The train from {place} takes just under {n} hours and follows the river for most of the way.",
        "Visitors who arrive early can walk through the old market before the crowds appear.",
        "{name} recommends staying at least two nights to see {place} without having to rush.",
        "The museum near the harbour is free on {day} and has a small café on the top floor.",
        "Local buses are cheap and reliable, although the timetable changes during the winter months.",
        "A short walk along the coast path leads to a quiet beach that few tourists know about.",
        "It is a good idea to book a table for dinner, since the best restaurants fill up quickly.",
        "Many of the houses in {place} were built with stone from the hills that surround the valley.",
    ),
    "news": (
        "The council of {place} met on {day} to discuss plans for a new footbridge over the river.",
        "According to the mayor, the work should begin next spring and last about {n} months.",
        "Residents have been asked to share their views at a public meeting in the town hall.",
        "The library in {place} will extend its opening hours and offer free reading groups for children.",
        "{name}, who has run the bakery on the high street for {n} years, welcomed the decision.",
        "Police said that the road would remain closed while the repairs to the drains are carried out.",
        "A volunteer group collected more than {n} bags of litter from the park during the weekend.",
        "The school football team from {place} won the regional final after a tense second half.",
    ),
    "science": (
        "Light from the sun takes a little more than eight minutes to reach the surface of the Earth.",
        "Scientists can tell the age of a tree by counting the rings that form in the trunk each year.",
        "Water expands when it freezes, which is why a full bottle can crack in the freezer.",
        "{name}, a researcher based in {place}, studies how bees find their way back to the hive.",
        "The experiment was repeated {n} times to make sure that the result was not a matter of chance.",
        "Sound travels faster through water than through air because the molecules are closer together.",
        "Plants turn sunlight, water and carbon dioxide into sugar and release oxygen along the way.",
        "A good explanation starts with a simple question and then tests each possible answer with care.",
    ),
}
EN_GENERIC = (
    "This is one of those things that is easy to learn and hard to forget.",
    "Over the years the idea has become popular with people of all ages in {place}.",
    "There is no need for special equipment, and most of what you need is already at home.",
    "As {name} put it, the small details are often what make the biggest difference.",
    "It took a few attempts to get it right, but the effort was worth it in the end.",
    "Friends and neighbours are often happy to share advice that they have learned the hard way.",
)
EN_OPENERS = ("In {place}, ", "On {day}, ", "According to {name}, ", "For most families, ", "As a rule, ",
              "Once again, ", "In the end, ", "Every year, ", "To be fair, ", "Back in {place}, ")
OTHER_LANGS: dict[str, tuple[str, ...]] = {
    "de": (
        "Am {day} trafen sich die Nachbarn aus {place}, um den kleinen Park gemeinsam aufzuräumen.",
        "Die Suppe schmeckt am besten, wenn man sie langsam kochen lässt und erst am Ende salzt.",
        "Im Frühling ist der richtige Zeitpunkt, um Kräuter und Tomaten im Garten zu pflanzen.",
        "{name} erzählt, dass das Rezept seit über {n} Jahren in der Familie weitergegeben wird.",
        "Der Zug nach {place} fährt jede Stunde und braucht ungefähr {n} Minuten.",
        "Viele Besucher kommen wegen der alten Brücke und der schönen Aussicht über das Tal.",
        "Die Bibliothek in {place} bietet ab nächster Woche kostenlose Lesestunden für Kinder an.",
        "Wer früh aufsteht, kann auf dem Markt frisches Gemüse und warmes Brot kaufen.",
        "Nach Angaben der Gemeinde sollen die Bauarbeiten im Herbst abgeschlossen sein.",
        "Wasser dehnt sich beim Gefrieren aus, deshalb kann eine volle Flasche im Eisfach platzen.",
        "Ein einfacher Versuch zeigt, wie Pflanzen mit Hilfe von Licht ihre Nahrung herstellen.",
        "Die meisten Zutaten findet man in jedem Laden, und teure Geräte braucht man nicht.",
    ),
    "fr": (
        "Le marché de {place} ouvre tous les {day}s dès sept heures du matin.",
        "{name} explique que la soupe est meilleure lorsqu'on la laisse mijoter longtemps.",
        "Au printemps, il faut planter les tomates et les herbes après les dernières gelées.",
        "La bibliothèque de {place} propose des ateliers de lecture gratuits pour les enfants.",
        "Le train pour {place} part toutes les heures et le trajet dure environ {n} minutes.",
        "Beaucoup de visiteurs viennent pour le vieux pont et la belle vue sur la vallée.",
        "Selon la mairie, les travaux sur la place centrale devraient se terminer à l'automne.",
        "L'eau se dilate quand elle gèle, c'est pourquoi une bouteille pleine peut éclater.",
        "Le café près du port sert un excellent gâteau aux pommes et un thé très parfumé.",
        "Il n'est pas nécessaire d'acheter du matériel coûteux pour bien commencer.",
        "Les voisins se sont réunis un {day} pour nettoyer ensemble le petit jardin public.",
        "Une expérience simple montre comment les plantes fabriquent leur nourriture grâce à la lumière.",
    ),
    "es": (
        "El mercado de {place} abre todos los {day} desde las siete de la mañana.",
        "{name} dice que la sopa sabe mejor cuando se cocina despacio y con paciencia.",
        "En primavera es el momento de plantar tomates y hierbas aromáticas en el huerto.",
        "La biblioteca de {place} ofrece talleres de lectura gratuitos para niños y niñas.",
        "El tren a {place} sale cada hora y el viaje dura unos {n} minutos.",
        "Muchos visitantes llegan por el puente antiguo y la vista del valle.",
        "Según el ayuntamiento, las obras de la plaza terminarán antes del otoño.",
        "El agua se expande al congelarse, por eso una botella llena puede romperse en el congelador.",
        "¿Sabías que la receta pasó de abuela a nieta durante más de {n} años?",
        "No hace falta comprar herramientas caras para empezar a cocinar en casa.",
        "Los vecinos de {place} se reunieron el fin de semana para limpiar juntos el pequeño parque.",
        "Un experimento sencillo muestra cómo las plantas fabrican su alimento con la luz del sol.",
    ),
    "zh": (
        "{place}的早市每天早上六点开门，附近的居民都喜欢来这里买菜。", "做这道汤的关键是耐心，要用小火慢慢地炖。",
        "春天是种番茄和香草的好时候，但要等最后一次霜冻过去。", "图书馆从下个月开始为孩子们提供免费的读书活动。",
        "去{place}的火车每小时一班，路上大约需要{n}分钟。", "水结冰时体积会变大，所以装满水的瓶子放进冰箱可能会裂开。",
        "很多游客是为了看老桥和山谷的风景才来的。", "其实不需要昂贵的工具，家里现有的东西就够用了。",
    ),
    "ru": (
        "Рынок в городе {place} открывается каждое утро в семь часов.",
        "{name} говорит, что суп вкуснее, если варить его медленно и долго.",
        "Весной нужно сажать помидоры и зелень, когда пройдут последние заморозки.",
        "Городская библиотека предлагает детям бесплатные занятия по чтению.",
        "Поезд до города {place} ходит каждый час, дорога занимает около {n} минут.",
        "Вода расширяется при замерзании, поэтому полная бутылка может лопнуть в морозилке.",
        "Многие туристы приезжают ради старого моста и красивого вида на долину.",
        "Для начала не нужны дорогие инструменты, почти всё необходимое уже есть дома.",
    ),
    "eo": (
        "La urbo {place} havas belan parkon apud la rivero, kie familioj promenas dimanĉe.",
        "Multaj homoj ŝatas kuiri simplan supon el legomoj kaj baki freŝan panon.",
        "En printempo oni plantas tomatojn kaj herbojn en la ĝardeno.",
        "La biblioteko proponas senpagajn legokursojn por infanoj ĉiusemajne.",
        "La trajno al {place} foriras ĉiuhore, kaj la vojaĝo daŭras ĉirkaŭ {n} minutojn.",
        "Akvo plivastiĝas kiam ĝi frostiĝas, tial plena botelo povas rompiĝi.",
    ),
}
VOCAB: dict[str, dict[str, tuple[str, ...]]] = {
    "en": {"place": ("Millbrook", "Harwick", "Oakridge", "Lowmoor", "Castleton", "Eastvale", "Fairhaven",
                     "Ashby", "Greystone", "Kestrel Bay", "Pine Hollow", "Brennan Falls"),
           "name": ("Maria", "Tom", "Aisha", "Daniel", "Priya", "Owen", "Lena", "Samuel", "Grace", "Ravi"),
           "day": ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"),
           "food": ("lentil soup", "rye bread", "tomato sauce", "apple cake", "risotto", "bean stew",
                    "vegetable curry", "flatbread", "fish pie", "pancakes"),
           "plant": ("tomatoes", "garlic", "runner beans", "lavender", "strawberries", "courgettes",
                     "rosemary", "potatoes", "sunflowers", "kale")},
    "de": {"place": ("Lindenfeld", "Birkhausen", "Bad Eichtal", "Oberwiesen", "Steinach"),
           "name": ("Jonas", "Sabine", "Klaus", "Mia", "Henrik"),
           "day": ("Montag", "Dienstag", "Mittwoch", "Samstag", "Sonntag")},
    "fr": {"place": ("Saint-Aubin", "Valmont", "Beaulieu", "Roche-sur-Lac", "Montclar"),
           "name": ("Élodie", "Julien", "Camille", "Hugo", "Léa"),
           "day": ("lundi", "mardi", "mercredi", "samedi", "dimanche")},
    "es": {"place": ("Villaverde", "San Lorenzo", "Puerto Claro", "Valdemora", "Río Seco"),
           "name": ("Lucía", "Javier", "Carmen", "Diego", "Sofía"),
           "day": ("lunes", "martes", "miércoles", "jueves", "viernes")},
    "zh": {"place": ("杭州", "成都", "青岛", "苏州", "大理")},
    "ru": {"place": ("Казань", "Тверь", "Самара", "Псков"), "name": ("Анна", "Иван", "Ольга", "Пётр")},
    "eo": {"place": ("Verdavalo", "Suna Haveno", "Montaro")},
}
LANG_SHARES = {"de": 0.09, "fr": 0.09, "es": 0.09, "zh": 0.03, "ru": 0.03}  # + 2 "eo", rest "en"

# ---- defects ------------------------------------------------------------------------------------
BOILERPLATE = ("This site uses cookies to improve your experience. By continuing you accept their use.",
               "Privacy Policy | Terms of Use | Contact", "Please enable JavaScript to view the comments.",
               "Home | News | Sport | Weather | Shop", "Sign up for our newsletter", "Share on Facebook")
SHORT_JUNK = ("Click here to continue.", "Loading...", "404 Not Found", "Buy cheap tickets now",
              "Page 2 of 7")
CODE = "var settings = { theme: 'dark', retries: 3 };\nfunction init() { return settings.theme; }"
LOREM = "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor incididunt."
PUBLIC_IPS = ("93.184.216.34", "8.8.4.4", "1.1.1.1")
PRIVATE_IP = "192.168.0.12"
WEIRD_SPACE = ("\u00a0", "  ", "\t", "\u200b ", "\u3000", " \x07", "\x0b", "\u2009")
# defect -> share of the English documents that get it (each document gets at most one)
EN_DEFECTS = {"boilerplate": 0.10, "repetition": 0.04, "short": 0.03, "code": 0.02, "lorem": 0.02,
              "pii": 0.04, "control_chars": 0.05}
MOJIBAKE_SHARE = 0.15  # of the de/fr/es documents
DUPLICATE_SHARE = 0.05  # of all documents: copies of a good document under a new id and url
NEAR_DUPLICATE_SHARE = 0.03  # of all documents: a good English document plus one sentence (~0.9 Jaccard)


def _fill(rng: random.Random, template: str, lang: str) -> str:
    slots = {key: rng.choice(values) for key, values in VOCAB[lang].items()}
    return template.format(n=rng.randint(2, 40), **slots)


def _compose(rng: random.Random, lang: str, topic: str) -> str:
    """Three to five paragraphs of two to four distinct sentences, one paragraph per line."""
    if lang != "en":
        pool = list(OTHER_LANGS[lang])
        rng.shuffle(pool)
        sizes = [len(pool) // 3] * 3 if lang in ("zh", "ru", "eo") else [rng.randint(2, 3) for _ in range(3)]
    else:
        pool = list(EN_TOPICS[topic] + EN_GENERIC)
        rng.shuffle(pool)
        sizes = [rng.randint(2, 3) for _ in range(rng.randint(3, 4))]
    paragraphs, start = [], 0
    joiner = "" if lang == "zh" else " "
    for size in sizes:
        sentences = []
        for template in pool[start:start + size]:
            sentence = _fill(rng, template, lang)
            if lang == "en" and template[0] != "{" and template not in EN_GENERIC and rng.random() < 0.4:
                sentence = _fill(rng, rng.choice(EN_OPENERS), lang) + sentence[0].lower() + sentence[1:]
            sentences.append(sentence)
        paragraphs.append(joiner.join(sentences))
        start += size
    return "\n\n".join(paragraphs)


def _inject(rng: random.Random, defect: str, text: str) -> str:
    paragraphs = text.split("\n\n")
    at = rng.randint(1, len(paragraphs))
    if defect == "boilerplate":
        lines = rng.sample(BOILERPLATE, rng.randint(1, 3))
        return "\n".join(lines[:1] + ["\n\n".join(paragraphs)] + lines[1:])
    if defect == "repetition":
        if rng.random() < 0.5:
            return "\n".join([paragraphs[0]] * rng.randint(15, 40))
        return "\n\n".join(paragraphs + [paragraphs[-1]] * rng.randint(6, 12))
    if defect == "short":
        return rng.choice(SHORT_JUNK)
    if defect in ("code", "lorem", "pii"):
        name = rng.choice(VOCAB["en"]["name"]).lower()
        extra = {"code": CODE, "lorem": LOREM,
                 "pii": f"For questions, write to {name}.{rng.randint(1, 99)}@example.org or use the mirror "
                        f"at {rng.choice(PUBLIC_IPS)}; the office printer is at {PRIVATE_IP}."}[defect]
        return "\n\n".join(paragraphs[:at] + [extra] + paragraphs[at:])
    if defect == "mojibake":  # UTF-8 bytes read as Windows-1252: "café" -> "cafÃ©"
        raw = text.encode("utf-8")
        try:
            return raw.decode("cp1252")
        except UnicodeDecodeError:  # a byte cp1252 leaves undefined: latin-1 maps every byte
            return raw.decode("latin-1")
    assert defect == "control_chars", defect
    words = text.split(" ")
    for i in rng.sample(range(1, len(words)), min(6, len(words) - 1)):
        words[i] = rng.choice(WEIRD_SPACE) + words[i]
    return " ".join(words).replace("\n\n", "  \r\n\r\n", 1) + "\x00"


def _record(rng: random.Random, i: int, lang: str, topic: str, text: str, defect: str | None) -> dict:
    return {"id": f"demo-{i:05d}", "text": text, "url": f"https://{topic}.example.com/{lang}/{i:05d}.html",
            "source": f"demo/{topic}", "crawl_date": f"2026-{rng.randint(1, 10):02d}-{rng.randint(1, 28):02d}",
            "defect": defect}


def _documents(rng: random.Random, n_docs: int) -> list[dict]:
    n_dup, n_near = max(1, round(DUPLICATE_SHARE * n_docs)), max(1, round(NEAR_DUPLICATE_SHARE * n_docs))
    langs = [lang for lang, share in LANG_SHARES.items() for _ in range(max(1, round(share * n_docs)))]
    langs += ["eo", "eo"]
    langs += ["en"] * (n_docs - n_dup - n_near - len(langs))
    if langs.count("en") < 2 * len(EN_DEFECTS):
        raise ValueError(f"n_docs={n_docs} is too small for every defect kind; use at least 100")
    docs = []
    for i, lang in enumerate(langs):
        topic = rng.choice(list(EN_TOPICS))
        docs.append(_record(rng, i, lang, topic, _compose(rng, lang, topic), None))
    english = [d for d in docs if "/en/" in d["url"]]
    rng.shuffle(english)
    start = 0
    for defect, share in EN_DEFECTS.items():
        for doc in english[start:start + max(1, round(share * len(english)))]:
            doc["text"], doc["defect"] = _inject(rng, defect, doc["text"]), defect
            start += 1
    accented = [d for d in docs if any(f"/{lang}/" in d["url"] for lang in ("de", "fr", "es"))]
    for doc in rng.sample(accented, max(1, round(MOJIBAKE_SHARE * len(accented)))):
        doc["text"], doc["defect"] = _inject(rng, "mojibake", doc["text"]), "mojibake"
    good = [d for d in docs if d["defect"] is None]
    near = [d for d in good if "/en/" in d["url"]]
    copies = [(d, "exact_duplicate") for d in rng.sample(good, n_dup)]
    copies += [(d, "near_duplicate") for d in rng.sample(near, n_near)]
    for k, (original, defect) in enumerate(copies):
        text = original["text"]
        if defect == "near_duplicate":
            text += " " + _fill(rng, rng.choice(EN_GENERIC), "en")
        copy = _record(rng, len(langs) + k, "", "", text, defect)
        copy["url"], copy["source"] = original["url"].replace(".html", f"-copy{k}.html"), original["source"]
        docs.append(copy)
    rng.shuffle(docs)
    return docs


def write_demo_corpus(directory: Path, seed: int = 20261123, n_docs: int = 600) -> list[Path]:
    """Write the demo corpus as four JSONL shards (plain, gzip, plain, zstd) and return their paths.

    Args:
        directory: where the shards go (created if missing; same-named files are overwritten
            unless they already hold the same bytes, so a rerun of the demo is fully cached).
        seed: the one source of randomness; the same seed gives byte-identical files.
        n_docs: well-formed documents (at least 100); four malformed records come on top.

    Returns:
        The shard paths, in `SHARDS` order.

    Example:
        >>> paths = write_demo_corpus(Path("demo"))  # doctest: +SKIP
    """
    rng = random.Random(seed)
    lines = [[] for _ in SHARDS]
    for k, doc in enumerate(_documents(rng, n_docs)):
        lines[k % len(SHARDS)].append(json.dumps(doc, ensure_ascii=False).encode("utf-8") + b"\n")
    malformed = (b'{"id": "demo-broken", "text": "This record stops in the middle of a str\n',
                 b'{"id": "demo-null-text", "text": null, "url": "https://news.example.com/en/null.html"}\n',
                 b'{"id": "demo-bad-utf8", "text": "Caf\xe9 au lait \xff\xfe is not UTF-8."}\n',
                 b'{"id": "demo-no-text", "body": "The text sits under the wrong key."}\n')
    for shard, record in zip(lines, malformed):
        shard.insert(rng.randint(0, len(shard)), record)
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, shard in zip(SHARDS, lines):
        data = b"".join(shard)
        if name.endswith(".gz"):
            data = gzip.compress(data, mtime=0)
        elif name.endswith(".zst"):
            data = zstandard.ZstdCompressor(level=10).compress(data)
        path = directory / name
        if not path.is_file() or path.read_bytes() != data:  # unchanged files keep their mtime: reruns hit the cache
            path.write_bytes(data)
        paths.append(path)
    return paths
