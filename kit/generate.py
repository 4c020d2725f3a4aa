"""The kit's offline Spanish data set: synthetic extractive questions in SQuAD v2.0 format.

Why it exists: the kit must run (and its notebooks must train and distil a model) with no network and
no licensed corpus. This module writes a small Spanish QA set from fact tables typed in below, the
same bytes for the same seed, so a small transformer can be trained on it on a CPU in minutes.

What it looks like: each paragraph (4-8 sentences, 60-150 words) describes two to four entities of
one kind -- people (birth city and date, profession, employer, how many books/children/medals),
localities (country, population, river, founding year, mayor, distance or altitude) or organisations
(founder, founding year, headquarters, staff, director) -- sometimes one entity of another kind that
is linked to them, and one or two distractor sentences. Questions ask for one fact ("¿Dónde nació
Lucía Gómez?"); the answer is an exact span of the paragraph. About 15% are unanswerable (v2 style):
they ask about a fact that the paragraph does not state, about someone who is only mentioned in
passing, or about a look-alike of a mentioned entity ("Lucía Navarro" when only "Lucía Gómez" is there).

Why the distractors: if a paragraph had one city and the question asked for a city, "take the first
city" would score 100% without reading. Here every paragraph holds several entities of each type
(several birth cities, years, names, numbers) and the distractor sentences add more, so the model has
to read the question, find the entity it names and take the value from *that* entity's sentence. A
"first entity with the answer's label" baseline gets about 30% of the answerable questions right
(about 40 F1 overall when it answers "" to the unanswerable ones; see kit/baselines.py and
tests/test_generate.py), while a small model trained on it should reach F1 >= 85.

Facts are invented (real Spanish and Latin American cities are used only as birthplaces, headquarters
and reference points; the localities, organisations and people are made up). Every entity mention is
listed in the paragraph's `entities` with its character offset and a label (PER, LOC, ORG, DATE, NUM,
MISC for professions), so the same files also serve an entity-tagging exercise.

    python -m kit.generate --out data --seed 0      # writes data/{train,validation,test}.json
"""
from __future__ import annotations

import argparse
import hashlib
import json
import random
import re
from dataclasses import dataclass, field
from pathlib import Path

VERSION = "kit-es-synth-1"
DEFAULT_SIZES = {"train": 3000, "validation": 400, "test": 600}   # questions per split
PARAGRAPHS_PER_ARTICLE = 5
MIN_WORDS, MAX_WORDS = 60, 150        # a paragraph fits one 256-token window of a small model
MIN_SENTENCES, MAX_SENTENCES = 4, 8

# ============================================================================= fact tables

FEMALE_NAMES = ["María", "Lucía", "Carmen", "Isabel", "Ana", "Laura", "Marta", "Elena", "Sofía", "Paula",
                "Valentina", "Camila", "Daniela", "Gabriela", "Fernanda", "Ximena", "Rocío", "Pilar",
                "Beatriz", "Teresa", "Julia", "Inés", "Adriana", "Natalia", "Verónica", "Lorena", "Mariana",
                "Claudia", "Patricia", "Alejandra", "Renata", "Catalina"]
MALE_NAMES = ["José", "Juan", "Carlos", "Javier", "Miguel", "Antonio", "Manuel", "Pedro", "Luis", "Diego",
              "Andrés", "Alejandro", "Fernando", "Jorge", "Sergio", "Pablo", "Raúl", "Óscar", "Rodrigo",
              "Gonzalo", "Mateo", "Tomás", "Emilio", "Ricardo", "Eduardo", "Hugo", "Ignacio", "Felipe",
              "Joaquín", "Álvaro", "Esteban", "Guillermo"]
SURNAMES = ["García", "Rodríguez", "González", "Fernández", "López", "Martínez", "Sánchez", "Pérez", "Gómez",
            "Díaz", "Hernández", "Álvarez", "Jiménez", "Ruiz", "Moreno", "Muñoz", "Romero", "Alonso",
            "Gutiérrez", "Navarro", "Torres", "Domínguez", "Vázquez", "Ramos", "Gil", "Ramírez", "Serrano",
            "Blanco", "Molina", "Morales", "Suárez", "Ortega", "Delgado", "Castro", "Ortiz", "Rubio",
            "Marín", "Sanz", "Iglesias", "Castillo", "Cortés", "Garrido", "Vargas", "Rojas", "Herrera",
            "Aguilar", "Mendoza", "Paredes", "Salazar", "Quispe", "Cárdenas", "Fuentes", "Villalobos",
            "Espinoza", "Contreras", "Figueroa"]

# Real cities, each name used once (no Córdoba/Córdoba or Guadalajara/Guadalajara ambiguity).
CITIES = [
    ("Madrid", "España"), ("Barcelona", "España"), ("Sevilla", "España"), ("Valencia", "España"),
    ("Bilbao", "España"), ("Zaragoza", "España"), ("Málaga", "España"), ("Granada", "España"),
    ("Salamanca", "España"), ("Toledo", "España"), ("Oviedo", "España"), ("Santander", "España"),
    ("Murcia", "España"), ("Alicante", "España"), ("Cádiz", "España"), ("Pamplona", "España"),
    ("Burgos", "España"), ("Valladolid", "España"), ("Vigo", "España"), ("Segovia", "España"),
    ("Cáceres", "España"), ("Almería", "España"), ("Logroño", "España"), ("Girona", "España"),
    ("Monterrey", "México"), ("Puebla", "México"), ("Oaxaca", "México"), ("Veracruz", "México"),
    ("Bogotá", "Colombia"), ("Medellín", "Colombia"), ("Cali", "Colombia"), ("Barranquilla", "Colombia"),
    ("Lima", "Perú"), ("Arequipa", "Perú"), ("Cusco", "Perú"), ("Piura", "Perú"),
    ("Quito", "Ecuador"), ("Guayaquil", "Ecuador"), ("Loja", "Ecuador"),
    ("Valparaíso", "Chile"), ("Concepción", "Chile"), ("Antofagasta", "Chile"), ("Temuco", "Chile"),
    ("Buenos Aires", "Argentina"), ("Rosario", "Argentina"), ("Córdoba", "Argentina"), ("Mendoza", "Argentina"),
    ("Montevideo", "Uruguay"), ("Salto", "Uruguay"), ("Asunción", "Paraguay"), ("Encarnación", "Paraguay"),
    ("Sucre", "Bolivia"), ("Cochabamba", "Bolivia"), ("Caracas", "Venezuela"), ("Maracaibo", "Venezuela"),
    ("Tegucigalpa", "Honduras"), ("Managua", "Nicaragua"), ("San Salvador", "El Salvador"),
    ("Quetzaltenango", "Guatemala"), ("La Habana", "Cuba"), ("Santo Domingo", "República Dominicana"),
]
COUNTRIES = list(dict.fromkeys(country for _, country in CITIES))   # in table order, no duplicates

# Invented localities: "San Lorenzo de la Sierra", "Vega del Olivar", ... (no saint that is also a first name
# in the tables above, so a locality is never confused with a person).
TOWN_HEADS = ["San Martín", "Santa Rosa", "Villanueva", "Puerto", "Valle", "San Lorenzo", "Santa Cruz", "Monte",
              "Peña", "Vega", "San Bartolomé", "Santa Eulalia", "Torre", "Fuente", "Villaverde"]
TOWN_TAILS = ["de los Pinos", "del Monte", "de la Sierra", "del Río", "de las Flores", "del Valle", "de la Frontera",
              "de los Álamos", "del Mar", "de las Piedras", "del Campo", "de la Vega", "del Olivar",
              "de los Robles", "de la Cruz"]
TOWNS = [f"{head} {tail}" for head in TOWN_HEADS for tail in TOWN_TAILS
         if not set(head.lower().split()) & set(tail.lower().split())]    # no "Vega de la Vega"
RIVERS = ["río Salado", "río Claro", "río Hondo", "río Blanco", "río Negro", "río Verde", "río Frío", "río Seco",
          "río Colorado", "río Manso", "río Tinto", "río Sereno", "río Chico", "río Grande", "río Dulce",
          "río Lucero", "río Almendral", "río Arenal"]

# (name prefix, grammatically feminine, what the head count counts, (low, high, step) of that count)
ORG_TYPES = [
    ("Universidad", True, "estudiantes", (2_000, 60_000, 100)),
    ("Editorial", True, "empleados", (15, 900, 5)),
    ("Fundación", True, "voluntarios", (20, 3_000, 10)),
    ("Constructora", True, "trabajadores", (40, 5_000, 10)),
    ("Cooperativa", True, "socios", (30, 8_000, 10)),
    ("Banco", False, "empleados", (200, 30_000, 50)),
    ("Grupo", False, "empleados", (50, 20_000, 50)),
    ("Club Deportivo", False, "socios", (300, 90_000, 100)),
    ("Instituto", False, "investigadores", (10, 800, 5)),
    ("Laboratorio", False, "trabajadores", (12, 2_000, 4)),
]
ORG_CORES = ["Horizonte", "Altamira", "Cóndor", "Alborada", "Meridiano", "Vértice", "Brújula", "Quetzal",
             "Colibrí", "Ceibo", "Jacarandá", "Araucaria", "Laurel", "Amanecer", "Nogal", "Ombú", "Tucán",
             "Faro", "Girasol", "Mirador", "Arcoíris", "Atalaya", "Centella", "Cumbre", "Estrella Polar",
             "Cruz del Sur", "Nueva Aurora", "Sierra Azul"]

PROFESSIONS = [("arquitecto", "arquitecta"), ("ingeniero", "ingeniera"), ("médico", "médica"),
               ("abogado", "abogada"), ("profesor", "profesora"), ("periodista", "periodista"),
               ("escritor", "escritora"), ("pintor", "pintora"), ("músico", "música"), ("enfermero", "enfermera"),
               ("economista", "economista"), ("farmacéutico", "farmacéutica"), ("veterinario", "veterinaria"),
               ("cocinero", "cocinera"), ("fotógrafo", "fotógrafa"), ("traductor", "traductora"),
               ("biólogo", "bióloga"), ("historiador", "historiadora"), ("carpintero", "carpintera"),
               ("químico", "química"), ("dentista", "dentista"), ("bibliotecario", "bibliotecaria"),
               ("actor", "actriz"), ("diseñador", "diseñadora"), ("geólogo", "geóloga"),
               ("matemático", "matemática"), ("psicólogo", "psicóloga"), ("escultor", "escultora"),
               ("astrónomo", "astrónoma"), ("agricultor", "agricultora")]

# What a person has a number of: noun -> (low, high). Each person has one such count.
PERSON_COUNTS = {"libros": (2, 40), "hijos": (2, 6), "medallas": (2, 30), "premios": (2, 15)}

MONTHS = ["enero", "febrero", "marzo", "abril", "mayo", "junio", "julio", "agosto", "septiembre",
          "octubre", "noviembre", "diciembre"]


def spanish_number(n: int) -> str:
    """3400 -> "3.400": Spanish thousands separator."""
    return f"{n:,}".replace(",", ".")


# ============================================================================= entities

@dataclass
class Entity:
    """A person, locality or organisation with all its facts; a paragraph states only some of them."""
    id: str                  # unique within one paragraph: "persona3", "lugar0", ...
    kind: str                # "persona" | "lugar" | "organizacion"
    name: str
    female: bool             # grammatical gender, for agreement ("nacida", "fundado", "la alcaldesa")
    facts: dict              # relation -> the value exactly as the context writes it
    links: dict = field(default_factory=dict)    # relation -> Entity (employer, founder, director, mayor)
    role: str = ""           # "fundador", "director" or "alcalde" for people who exist through an organisation


class Cast:
    """Draws the entities of one paragraph, never reusing a first name, surname, locality or organisation.

    Unique names keep every question unambiguous: "Lucía Gómez" names exactly one person, and "Gómez"
    (a later, shorter mention) too.
    """

    def __init__(self, rng: random.Random):
        self.rng = rng
        self.used: set[str] = set()      # only for membership tests: iteration order must never matter
        self.entities: dict[str, Entity] = {}

    def fresh(self, pool: list[str]) -> str:
        name = self.rng.choice([x for x in pool if x not in self.used])
        self.used.add(name)
        return name

    def add(self, kind: str, name: str, female: bool, facts: dict, **kw) -> Entity:
        entity = Entity(f"{kind}{len(self.entities)}", kind, name, female, facts, **kw)
        self.entities[entity.id] = entity
        return entity

    def person(self, born: tuple[int, int] = (1925, 2000), role: str = "", female: bool | None = None,
               given: str | None = None) -> Entity:
        rng = self.rng
        female = rng.random() < 0.5 if female is None else female
        given = given or self.fresh(FEMALE_NAMES if female else MALE_NAMES)
        surnames = [self.fresh(SURNAMES) for _ in range(1 if rng.random() < 0.6 else 2)]
        city, country = rng.choice(CITIES)
        year = rng.randint(*born)
        facts = {"apellido": surnames[0], "lugar_nacimiento": city, "pais": country}
        if rng.random() < 0.35:
            facts["fecha_nacimiento"] = f"{rng.randint(1, 28)} de {rng.choice(MONTHS)} de {year}"
        else:
            facts["año_nacimiento"] = str(year)
        facts["profesion"] = rng.choice(PROFESSIONS)[female]
        noun = rng.choice(list(PERSON_COUNTS))
        facts["cantidad"] = f"{rng.randint(*PERSON_COUNTS[noun])} {noun}"
        facts["cantidad_de"] = noun
        return self.add("persona", " ".join([given] + surnames), female, facts, role=role)

    def town(self, names: list[str] = TOWNS) -> Entity:
        rng = self.rng
        country = rng.choice(COUNTRIES)
        low, high, step = rng.choice([(800, 10_000, 10), (10_000, 100_000, 100), (100_000, 900_000, 1000)])
        facts = {"pais": country, "poblacion": f"{spanish_number(rng.randrange(low, high, step))} habitantes",
                 "rio": rng.choice(RIVERS), "año_fundacion": str(rng.randint(1520, 1950)),
                 "alcalde_desde": str(rng.randint(2003, 2020))}
        if rng.random() < 0.5:   # distance to a real city of the same country, or altitude
            facts["cantidad"] = f"{rng.randint(5, 300)} kilómetros"
            facts["cantidad_de"] = "distancia"
            facts["ciudad_cercana"] = rng.choice([c for c, k in CITIES if k == country])
        else:
            facts["cantidad"] = f"{spanish_number(rng.randrange(50, 4000, 10))} metros"
            facts["cantidad_de"] = "altitud"
        town = self.add("lugar", self.fresh(names), True, facts)   # "la localidad": feminine agreement
        town.links["alcalde"] = self.person(born=(1950, 1985), role="alcalde")
        return town

    def org(self, core: str | None = None, avoid_type: str = "") -> Entity:
        rng = self.rng
        prefix, female, noun, (low, high, step) = rng.choice([t for t in ORG_TYPES if t[0] != avoid_type])
        core = core or self.fresh(ORG_CORES)
        founded = rng.randint(1900, 2015)
        facts = {"tipo": prefix, "año_fundacion": str(founded), "sede": rng.choice(CITIES)[0],
                 "cantidad": f"{spanish_number(rng.randrange(low, high, step))} {noun}", "cantidad_de": noun,
                 "director_desde": str(rng.randint(max(founded + 1, 1985), 2020))}
        org = self.add("organizacion", f"{prefix} {core}", female, facts)
        org.links["fundador"] = self.person(born=(founded - 60, founded - 25), role="fundador")
        org.links["director"] = self.person(born=(1945, 1985), role="director")
        return org


def org_words(org: Entity) -> dict:
    """Articles and agreement for an organisation: "el Banco Cóndor", "de la Editorial Altamira"."""
    f = org.female
    return {"el": "la" if f else "el", "del": "de la" if f else "del",
            "fundado": "fundada" if f else "fundado", "dirigido": "dirigida" if f else "dirigido",
            "ubicado": "ubicada" if f else "ubicado"}


# ============================================================================= writing a paragraph

@dataclass(frozen=True)
class Span:
    """An entity mention to be written into a sentence."""
    text: str
    label: str                    # PER, LOC, ORG, DATE, NUM or MISC
    states: tuple | None = None   # (entity id, relation) when this mention is the value of that fact
    names: str | None = None      # the id of the entity that this mention names, if any


SLOT = re.compile(r"\{(\w+)\}")


class ParagraphWriter:
    """Appends sentences written from templates, keeping the exact offset of every mention.

    A template is plain Spanish with {slots}; a slot is filled either with plain words (articles,
    agreement) or with a Span, which is recorded in `entities` and, if it states a fact, in `answers`.
    Offsets are taken while the text is built, so they are right by construction.
    """

    def __init__(self, full_names: dict[str, str]):
        self.full_name_of = full_names                # entity id -> its full name
        self.context = ""
        self.entities: list[dict] = []
        self.answers: dict[tuple, dict] = {}       # (entity id, relation) -> the first mention stating it
        self.full_names: dict[str, dict] = {}      # entity id -> its first full-name mention
        self.mentioned: list[str] = []             # entity ids in order of first mention

    def write(self, template: str, slots: dict):
        if self.context:
            self.context += " "
        sentence_start = len(self.context)
        for i, part in enumerate(SLOT.split(template)):
            value = part if i % 2 == 0 else slots[part]   # split() alternates text and slot names
            if isinstance(value, Span):
                start = len(self.context)
                mention = {"text": value.text, "start": start, "label": value.label}
                self.entities.append(mention)
                if value.states:
                    self.answers.setdefault(value.states, mention)
                if value.names:
                    if value.names not in self.mentioned:
                        self.mentioned.append(value.names)
                    if value.text == self.full_name_of[value.names]:
                        self.full_names.setdefault(value.names, mention)
                value = value.text
            elif value and len(self.context) == sentence_start:
                value = value[0].upper() + value[1:]        # "el Banco ..." opening a sentence
            self.context += value


def name_span(entity: Entity, states: tuple | None = None) -> Span:
    label = {"persona": "PER", "lugar": "LOC", "organizacion": "ORG"}[entity.kind]
    return Span(entity.name, label, states, entity.id)


def join_clauses(clauses: list[str]) -> str:
    """["a"] -> "a"; ["a", "b"] -> "a y b"; ["a", "b", "c"] -> "a, b y c"."""
    return clauses[0] if len(clauses) == 1 else ", ".join(clauses[:-1]) + " y " + clauses[-1]


# ----------------------------------------------------------------------------- people
# Clause templates (no subject). {lugar} becomes "{ciudad}" or "{ciudad} ({pais})".
BIRTH = {
    ("lugar",): ["nació en {lugar}", "es natural de {lugar}", "vino al mundo en {lugar}"],
    ("año",): ["nació en {año}", "vino al mundo en {año}", "nació en el año {año}"],
    ("fecha",): ["nació el {fecha}", "vino al mundo el {fecha}", "tiene como fecha de nacimiento el {fecha}"],
    ("lugar", "año"): ["nació en {lugar} en {año}", "nació en {año} en {lugar}",
                       "vino al mundo en {lugar} en {año}"],
    ("lugar", "fecha"): ["nació en {lugar} el {fecha}", "nació el {fecha} en {lugar}",
                         "vino al mundo en {lugar} el {fecha}"],
}
BIRTH_APPOSITION = {   # "Lucía Gómez, nacida en Lima en 1954, trabaja como ..."
    ("lugar",): ["{nacido} en {lugar}", "natural de {lugar}"],
    ("año",): ["{nacido} en {año}"],
    ("fecha",): ["{nacido} el {fecha}"],
    ("lugar", "año"): ["{nacido} en {lugar} en {año}", "{nacido} en {año} en {lugar}"],
    ("lugar", "fecha"): ["{nacido} en {lugar} el {fecha}", "{nacido} el {fecha} en {lugar}"],
}
PROFESSION = ["trabaja como {prof}", "es {prof} de profesión", "ejerce como {prof}"]
EMPLOYER = ["trabaja en {el_org} {org}", "está {empleado} en {el_org} {org}",
            "forma parte de la plantilla {del_org} {org}"]
PROFESSION_AND_EMPLOYER = ["trabaja como {prof} en {el_org} {org}", "es {prof} en {el_org} {org}",
                           "ejerce como {prof} para {el_org} {org}"]
COUNT = {"libros": ["ha publicado {n}", "es {autor} de {n}", "escribió {n}"],
         "hijos": ["tiene {n}", "es {padre} de {n}", "crió a {n}"],
         "medallas": ["ha ganado {n}", "consiguió {n} a lo largo de su carrera", "suma {n} en su palmarés"],
         "premios": ["ha recibido {n}", "obtuvo {n}", "acumula {n}"]}
BIRTHPLACE_SENTENCES = ["{ciudad} es la ciudad natal de {P}.", "La ciudad natal de {P} es {ciudad}."]


def person_slots(p: Entity) -> dict:
    f, g = p.facts, p.female
    slots = {"P": name_span(p), "S": Span(f["apellido"], "PER", None, p.id),
             "ciudad": Span(f["lugar_nacimiento"], "LOC", (p.id, "lugar_nacimiento")),
             "pais": Span(f["pais"], "LOC", (p.id, "pais")),
             "prof": Span(f["profesion"], "MISC", (p.id, "profesion")),
             "n": Span(f["cantidad"], "NUM", (p.id, "cantidad")),
             "el": "la" if g else "el", "nacido": "nacida" if g else "nacido", "autor": "autora" if g else "autor",
             "padre": "madre" if g else "padre", "empleado": "empleada" if g else "empleado"}
    for rel in ("año_nacimiento", "fecha_nacimiento"):
        if rel in f:
            slots["año" if rel == "año_nacimiento" else "fecha"] = Span(f[rel], "DATE", (p.id, rel))
    if "empleador" in p.links:
        org = p.links["empleador"]
        words = org_words(org)
        slots.update(org=name_span(org, (p.id, "empleador")), el_org=words["el"], del_org=words["del"])
    return slots


def person_sentences(rng: random.Random, p: Entity, min_facts: int = 2) -> list[tuple[str, dict]]:
    """One or two sentences stating a random subset (at least `min_facts`) of a person's facts."""
    statable = ["lugar", "nacimiento", "profesion", "empleador", "cantidad"]
    if "empleador" not in p.links:
        statable.remove("empleador")
    stated = [x for x in statable if rng.random() < 0.7]
    while len(stated) < min(min_facts, len(statable)):
        stated.append(rng.choice([x for x in statable if x not in stated]))
    stated = [x for x in statable if x in stated]      # keep the canonical order
    # Facts that read naturally together stay in one sentence: where+when, profession+employer.
    groups = [g for g in (["lugar", "nacimiento"], ["profesion", "empleador"], ["cantidad"])
              if any(x in stated for x in g)]
    groups = [[x for x in g if x in stated] for g in groups]
    if len(groups) > 1 and rng.random() < 0.6:
        cut = rng.randint(1, len(groups) - 1)
        sentences = [sum(groups[:cut], []), sum(groups[cut:], [])]
    else:
        sentences = [sum(groups, [])]
    slots = person_slots(p)
    return [_person_sentence(rng, p, facts, slots, first=(i == 0)) for i, facts in enumerate(sentences)]


def _person_sentence(rng, p: Entity, facts: list[str], slots: dict, first: bool) -> tuple[str, dict]:
    # The first mention is the full name; a later one may be the surname alone ("Gómez publicó ...").
    subject = "{P}" if first or rng.random() < 0.5 else "{S}"
    birth_key = tuple(k for k, on in (("lugar", "lugar" in facts),
                                     ("fecha" if "fecha_nacimiento" in p.facts else "año", "nacimiento" in facts))
                      if on)
    if facts == ["lugar"] and rng.random() < 0.25:
        return rng.choice(BIRTHPLACE_SENTENCES), slots
    rest = []
    if "profesion" in facts and "empleador" in facts:
        rest.append(rng.choice(PROFESSION_AND_EMPLOYER))
    elif "profesion" in facts:
        if len(facts) > 1 and rng.random() < 0.35:
            subject = "{el} {prof} " + subject          # "La arquitecta Lucía Gómez nació en ..."
        else:
            rest.append(rng.choice(PROFESSION))
    elif "empleador" in facts:
        rest.append(rng.choice(EMPLOYER))
    if "cantidad" in facts:
        rest.append(rng.choice(COUNT[p.facts["cantidad_de"]]))
    if birth_key and rest and rng.random() < 0.3:
        template = f"{subject}, {rng.choice(BIRTH_APPOSITION[birth_key])}, {join_clauses(rest)}."
    else:
        clauses = ([rng.choice(BIRTH[birth_key])] if birth_key else []) + rest
        template = f"{subject} {join_clauses(clauses)}."
    lugar = "{ciudad} ({pais})" if rng.random() < 0.35 else "{ciudad}"
    return template.replace("{lugar}", lugar), slots


# ----------------------------------------------------------------------------- localities
TOWN_CLAUSES = {
    "pais": ["es un municipio de {pais}", "se encuentra en {pais}", "es una localidad situada en {pais}"],
    "poblacion": ["tiene {pob}", "cuenta con {pob}", "tiene una población de {pob}"],
    "rio": ["está a orillas del {rio}", "se levanta junto al {rio}", "es atravesada por el {rio}"],
    "año_fundacion": ["fue fundada en {año}", "se fundó en {año}", "tiene su origen en {año}"],
    "distancia": ["está a {n} de {cerca}", "se encuentra a {n} de {cerca}", "dista {n} de {cerca}"],
    "altitud": ["está situada a {n} de altitud", "se encuentra a {n} sobre el nivel del mar",
                "se alza a {n} de altitud"],
}
TOWN_APPOSITION = ["una localidad de {pais}", "un municipio de {pais}", "situada en {pais}"]
MAYOR_SENTENCES = ["{el_alcalde} de {T} es {alcalde}.", "{alcalde} es {el_alcalde} de {T} desde {desde}.",
                   "Desde {desde}, {el_alcalde} de {T} es {alcalde}.", "Su {alcalde_w} es {alcalde}."]


def town_sentences(rng: random.Random, town: Entity) -> list[tuple[str, dict]]:
    """Sentences about a locality: some of its facts, up to three per sentence, and maybe its mayor."""
    f, mayor = town.facts, town.links["alcalde"]
    slots = {"T": name_span(town), "pais": Span(f["pais"], "LOC", (town.id, "pais")),
             "pob": Span(f["poblacion"], "NUM", (town.id, "poblacion")),
             "rio": Span(f["rio"], "LOC", (town.id, "rio")),
             "año": Span(f["año_fundacion"], "DATE", (town.id, "año_fundacion")),
             "n": Span(f["cantidad"], "NUM", (town.id, "cantidad")),
             "alcalde": name_span(mayor, (town.id, "alcalde")),
             "desde": Span(f["alcalde_desde"], "DATE"),
             "alcalde_w": "alcaldesa" if mayor.female else "alcalde",
             "el_alcalde": "la alcaldesa" if mayor.female else "el alcalde"}
    if "ciudad_cercana" in f:
        slots["cerca"] = Span(f["ciudad_cercana"], "LOC")
    facts = [r for r in ("pais", "poblacion", "rio", "año_fundacion", "cantidad") if rng.random() < 0.6]
    if not facts:
        facts = [rng.choice(["pais", "poblacion", "rio", "año_fundacion", "cantidad"])]
    clauses = [rng.choice(TOWN_CLAUSES[f["cantidad_de"] if r == "cantidad" else r]) for r in facts]
    # Up to three clauses per sentence; the country may go in an apposition instead.
    sentences = []
    if "pais" in facts and len(facts) > 1 and rng.random() < 0.4:
        clauses.pop(facts.index("pais"))
        sentences.append(f"{{T}}, {rng.choice(TOWN_APPOSITION)}, {join_clauses(clauses[:2])}.")
        clauses = clauses[2:]
    while clauses:
        take = rng.randint(1, min(3, len(clauses)))
        sentences.append(f"{{T}} {join_clauses(clauses[:take])}.")
        clauses = clauses[take:]
    if rng.random() < 0.55:
        sentences.append(rng.choice(MAYOR_SENTENCES))
    return [(s, slots) for s in sentences]


# ----------------------------------------------------------------------------- organisations
FOUNDING = {
    ("fundador", "año"): ["{el} {O} fue {fundado} por {fundador} en {año}.",
                          "{fundador} fundó {el} {O} en {año}.", "En {año}, {fundador} creó {el} {O}."],
    ("fundador",): ["{el} {O} fue {fundado} por {fundador}.", "{fundador} fundó {el} {O}.",
                    "{fundador} es {el_fundador} {del} {O}."],
    ("año",): ["{el} {O} fue {fundado} en {año}.", "{el} {O} se creó en {año}.",
               "{el} {O} abrió sus puertas en {año}."],
}
ORG_CLAUSES = {
    "sede": ["tiene su sede en {sede}", "está {ubicado} en {sede}", "tiene sus oficinas centrales en {sede}"],
    "cantidad": ["cuenta con {n}", "tiene {n}", "reúne a {n}"],
}
DIRECTOR_SENTENCES = ["{director} dirige {el} {O} desde {desde}.", "{el} {O} está {dirigido} por {director}.",
                      "Desde {desde}, {el} {O} está {dirigido} por {director}.",
                      "{el_director} {del} {O} es {director}."]


def org_sentences(rng: random.Random, org: Entity) -> list[tuple[str, dict]]:
    """Sentences about an organisation: its founding, headquarters and staff, and maybe its director."""
    f, founder, director = org.facts, org.links["fundador"], org.links["director"]
    head = "presidente" if f["tipo"] in ("Club Deportivo", "Cooperativa", "Fundación") else "director"
    slots = {"O": name_span(org), **org_words(org),
             "fundador": name_span(founder, (org.id, "fundador")),
             "año": Span(f["año_fundacion"], "DATE", (org.id, "año_fundacion")),
             "sede": Span(f["sede"], "LOC", (org.id, "sede")),
             "n": Span(f["cantidad"], "NUM", (org.id, "cantidad")),
             "director": name_span(director, (org.id, "director")),
             "desde": Span(f["director_desde"], "DATE"),
             "el_fundador": "la fundadora" if founder.female else "el fundador",
             "el_director": ("la " + ("presidenta" if head == "presidente" else "directora")) if director.female
             else "el " + head}
    sentences = []
    founding = tuple(x for x in ("fundador", "año") if rng.random() < 0.65)
    if founding:
        sentences.append(rng.choice(FOUNDING[founding]))
    clauses = [rng.choice(ORG_CLAUSES[r]) for r in ("sede", "cantidad") if rng.random() < 0.65]
    if clauses or not sentences:
        clauses = clauses or [rng.choice(ORG_CLAUSES["sede"])]
        sentences.append(f"{{el}} {{O}} {join_clauses(clauses)}.")
    if rng.random() < 0.5:
        sentences.append(rng.choice(DIRECTOR_SENTENCES))
    return [(s, slots) for s in sentences]


# ----------------------------------------------------------------------------- distractors
# General statements that name entities of the same types as the answers (cities, years, people,
# numbers, organisations) without stating any fact that a question asks about.
DISTRACTORS = [
    "Muchos visitantes llegan desde {C} cada verano.",
    "En {Y} se celebró en {C} un congreso internacional de ciencias.",
    "El periódico local publicó una entrevista con {P} en {Y}.",
    "{P} asistió a un concierto en {C} el verano pasado.",
    "La feria anual de {C} reúne a más de {N_visitantes}.",
    "{el} {O} organizó una exposición de fotografía en {C} en {Y}.",
    "Las obras de la carretera entre {C} y {C2} terminaron en {Y}.",
    "La biblioteca municipal de {C} conserva {N_libros}.",
    "Según {P}, {C} ha cambiado mucho desde {Y}.",
    "El clima de {pais} es muy variado.",
    "{P} suele pasar las vacaciones en {T}.",
    "Cada primavera, {T} celebra una feria de artesanía.",
    "{P} y {P2} coincidieron en un festival de cine en {C}.",
    "El equipo {del} {O} ganó un torneo regional en {Y}.",
    "Un documental sobre {C} se estrenó en {Y}.",
    "Más de {N_personas} asistieron a la inauguración del nuevo puente de {T}.",
    "El museo de {C} recibió {N_visitantes} el año pasado.",
    "{un} {prof} de {C} dio una charla en la escuela en {Y}.",
    "En {Y}, {un} {prof} joven ganó un concurso nacional en {C}.",
    "{P} visitó {el} {O} durante una feria en {C}.",
    "Según {un} {prof} de {C}, la región atrae a {N_turistas} cada año.",
    "{el} {O} patrocinó en {Y} una carrera popular con {N_personas}.",
]
DISTRACTOR_NUMBERS = ["visitantes", "libros", "personas", "turistas"]   # slot N_visitantes is "5.300 visitantes", ...


def distractor_sentence(rng: random.Random, cast: Cast, template: str) -> tuple[str, dict]:
    """Fill a distractor template with fresh entities (people, localities, organisations join the cast)."""
    used = set(SLOT.findall(template))
    slots = {}
    cities = rng.sample([c for c, _ in CITIES], 2)
    slots["C"], slots["C2"] = Span(cities[0], "LOC"), Span(cities[1], "LOC")
    slots["pais"] = Span(rng.choice(COUNTRIES), "LOC")
    slots["Y"] = Span(str(rng.randint(1950, 2020)), "DATE")
    female = rng.random() < 0.5
    slots["un"], slots["prof"] = "una" if female else "un", Span(rng.choice(PROFESSIONS)[female], "MISC")
    for noun in DISTRACTOR_NUMBERS:
        slots[f"N_{noun}"] = Span(f"{spanish_number(rng.randrange(200, 20_000, 50))} {noun}", "NUM")
    # Draw people, localities and organisations only when the template names them, so that every
    # entity the cast holds is either in the text or deliberately absent (see `absent_lookalikes`).
    for slot in ("P", "P2"):
        if slot in used:
            slots[slot] = name_span(cast.person())
    if "T" in used:
        slots["T"] = name_span(cast.town())
    if "O" in used:
        org = cast.org()
        slots.update(O=name_span(org), **org_words(org))
    return template, slots


# ============================================================================= questions
# (template, question_type); question_type is the interrogative word the question uses.
PERSON_QUESTIONS = {
    "lugar_nacimiento": [("¿En qué ciudad nació {P}?", "que"), ("¿Dónde nació {P}?", "donde"),
                         ("¿Cuál es la ciudad natal de {P}?", "cual"), ("¿De qué ciudad es {P}?", "que")],
    "pais": [("¿En qué país nació {P}?", "que"), ("¿De qué país es {P}?", "que"),
             ("¿Cuál es el país de origen de {P}?", "cual")],
    "año_nacimiento": [("¿En qué año nació {P}?", "que"), ("¿Cuándo nació {P}?", "cuando"),
                       ("¿Cuál es el año de nacimiento de {P}?", "cual")],
    "fecha_nacimiento": [("¿Cuándo nació {P}?", "cuando"), ("¿En qué fecha nació {P}?", "que"),
                         ("¿Cuál es la fecha de nacimiento de {P}?", "cual"), ("¿Qué día nació {P}?", "que")],
    "profesion": [("¿A qué se dedica {P}?", "que"), ("¿Cuál es la profesión de {P}?", "cual"),
                  ("¿Qué profesión ejerce {P}?", "que"), ("¿En qué trabaja {P}?", "que")],
    "empleador": [("¿Dónde trabaja {P}?", "donde"), ("¿Para qué organización trabaja {P}?", "que"),
                  ("¿Cuál es la organización en la que trabaja {P}?", "cual")],
    "cantidad:libros": [("¿Cuántos libros ha publicado {P}?", "cuanto"),
                        ("¿Cuántos libros escribió {P}?", "cuanto"),
                        ("¿Qué cantidad de libros ha publicado {P}?", "que"),
                        ("¿Cuál es el número de libros que ha publicado {P}?", "cual")],
    "cantidad:hijos": [("¿Cuántos hijos tiene {P}?", "cuanto"), ("¿Qué número de hijos tiene {P}?", "que"),
                       ("¿Cuál es el número de hijos de {P}?", "cual")],
    "cantidad:medallas": [("¿Cuántas medallas ha ganado {P}?", "cuanto"),
                          ("¿Cuántas medallas consiguió {P}?", "cuanto"),
                          ("¿Qué cantidad de medallas ha ganado {P}?", "que"),
                          ("¿Cuál es el número de medallas de {P}?", "cual")],
    "cantidad:premios": [("¿Cuántos premios ha recibido {P}?", "cuanto"),
                         ("¿Qué número de premios ha obtenido {P}?", "que"),
                         ("¿Cuál es el número de premios de {P}?", "cual")],
}
# Asked the other way round: the answer is the person, named by a fact unique in the paragraph.
PERSON_INVERSE_QUESTIONS = {
    "lugar_nacimiento": [("¿Quién nació en {ciudad}?", "quien"), ("¿Qué persona nació en {ciudad}?", "que"),
                         ("¿Quién es natural de {ciudad}?", "quien")],
    "profesion": [("¿Quién trabaja como {prof}?", "quien"), ("¿Quién es {prof} de profesión?", "quien"),
                  ("¿Qué persona ejerce como {prof}?", "que")],
}
TOWN_QUESTIONS = {
    "pais": [("¿En qué país se encuentra {T}?", "que"), ("¿A qué país pertenece {T}?", "que"),
             ("¿Cuál es el país de {T}?", "cual")],
    "poblacion": [("¿Cuántos habitantes tiene {T}?", "cuanto"), ("¿Cuál es la población de {T}?", "cual"),
                  ("¿Cuánta gente vive en {T}?", "cuanto")],
    "rio": [("¿Qué río atraviesa {T}?", "que"), ("¿A orillas de qué río está {T}?", "que"),
            ("¿Cuál es el río de {T}?", "cual")],
    "año_fundacion": [("¿En qué año fue fundada {T}?", "que"), ("¿Cuándo se fundó {T}?", "cuando"),
                      ("¿Cuál es el año de fundación de {T}?", "cual")],
    "alcalde": [("¿Quién es {el_alcalde} de {T}?", "quien"), ("¿Quién gobierna {T}?", "quien"),
                ("¿Quién ocupa la alcaldía de {T}?", "quien")],
    "cantidad:distancia": [("¿A cuántos kilómetros de {cerca} está {T}?", "cuanto"),
                           ("¿Qué distancia separa {T} de {cerca}?", "que"),
                           ("¿Cuál es la distancia entre {T} y {cerca}?", "cual")],
    "cantidad:altitud": [("¿A qué altitud se encuentra {T}?", "que"), ("¿Cuál es la altitud de {T}?", "cual"),
                         ("¿A cuántos metros de altitud está {T}?", "cuanto")],
}
ORG_QUESTIONS = {
    "fundador": [("¿Quién fundó {el} {O}?", "quien"), ("¿Quién creó {el} {O}?", "quien"),
                 ("¿Por quién fue {fundado} {el} {O}?", "quien"),
                 ("¿Cuál es el nombre de la persona que fundó {el} {O}?", "cual")],
    "año_fundacion": [("¿En qué año se fundó {el} {O}?", "que"), ("¿Cuándo fue {fundado} {el} {O}?", "cuando"),
                      ("¿Cuál es el año de fundación {del} {O}?", "cual")],
    "sede": [("¿Dónde tiene su sede {el} {O}?", "donde"), ("¿En qué ciudad está la sede {del} {O}?", "que"),
             ("¿Cuál es la sede {del} {O}?", "cual")],
    "cantidad": [("¿Cuántos {noun} tiene {el} {O}?", "cuanto"), ("¿Qué número de {noun} tiene {el} {O}?", "que"),
                 ("¿Cuál es el número de {noun} {del} {O}?", "cual")],
    "director": [("¿Quién dirige {el} {O}?", "quien"), ("¿Quién está al frente {del} {O}?", "quien"),
                 ("¿Cuál es el nombre de quien dirige {el} {O}?", "cual")],
}


def question_templates(entity: Entity, relation: str) -> list[tuple[str, str]]:
    if entity.kind == "persona":
        key = f"cantidad:{entity.facts['cantidad_de']}" if relation == "cantidad" else relation
        return PERSON_QUESTIONS[key]
    if entity.kind == "lugar":
        key = f"cantidad:{entity.facts['cantidad_de']}" if relation == "cantidad" else relation
        return TOWN_QUESTIONS[key]
    return ORG_QUESTIONS[relation]


def question_words(entity: Entity) -> dict:
    words = {"P": entity.name, "T": entity.name, "O": entity.name}
    if entity.kind == "lugar":
        mayor = entity.links["alcalde"]
        words.update(el_alcalde="la alcaldesa" if mayor.female else "el alcalde",
                     cerca=entity.facts.get("ciudad_cercana", ""))
    if entity.kind == "organizacion":
        words.update(org_words(entity), noun=entity.facts["cantidad_de"])
    return words


def askable_relations(entity: Entity, stated: set) -> list[str]:
    """Relations one may ask about `entity` whose answer the paragraph does not contain.

    Left out on purpose, because a reader could argue they *are* answered: the country of a person whose
    city is given (world knowledge), the country of a locality placed "a 25 kilómetros de Lima", and the
    job or employer of a mayor, founder or director (their role says where they work).
    """
    def has(rel):
        return (entity.id, rel) in stated
    if entity.kind == "persona":
        relations = ["lugar_nacimiento", "cantidad"]
        if not has("lugar_nacimiento"):
            relations.append("pais")
        if not has("año_nacimiento") and not has("fecha_nacimiento"):
            relations.append("fecha_nacimiento" if "fecha_nacimiento" in entity.facts else "año_nacimiento")
        if not entity.role:
            relations += ["profesion", "empleador"]
    elif entity.kind == "lugar":
        relations = ["poblacion", "rio", "año_fundacion", "alcalde", "cantidad"]
        if not (has("cantidad") and entity.facts["cantidad_de"] == "distancia"):
            relations.append("pais")
    else:
        relations = ["fundador", "año_fundacion", "sede", "cantidad", "director"]
    return [r for r in relations if not has(r)]


# ============================================================================= paragraphs

@dataclass
class Paragraph:
    context: str
    entities: list[dict]
    answerable: list[tuple]     # (entity, relation, answer mention, inverse?) ready to become questions
    unanswerable: list[list]    # groups of (entity, relation) that the context does not answer


def plan_paragraph(rng: random.Random, kind: str) -> tuple[list[list[tuple[str, dict]]], Cast, list[Entity]]:
    """Choose the entities and their sentences: blocks of sentences, one block per entity or distractor.

    Besides the main entities, a paragraph may describe one linked entity of another kind that it names
    anyway: a person's employer, a locality's mayor, an organisation's founder or director.
    """
    cast = Cast(rng)
    main: list[Entity] = []
    blocks = []
    if kind == "persona":
        n_people = rng.randint(2, 4)
        # Mostly different employers, so that "the first organisation" is seldom the right one.
        employers = [cast.org() for _ in range(min(n_people, rng.randint(2, 3)))]
        for i in range(n_people):
            person = cast.person()
            person.links["empleador"] = employers[i % len(employers)]
            main.append(person)
            blocks.append(person_sentences(rng, person))
        linked = [e for e in employers if e.id in named_in(blocks)]
        describe_linked = org_sentences
    elif kind == "lugar":
        for _ in range(rng.randint(2, 3)):
            main.append(cast.town())
            blocks.append(town_sentences(rng, main[-1]))
        linked = [t.links["alcalde"] for t in main if t.links["alcalde"].id in named_in(blocks)]
        describe_linked = lambda rng, person: person_sentences(rng, person, min_facts=1)[:1]
    else:
        for _ in range(rng.randint(2, 3)):
            main.append(cast.org())
            blocks.append(org_sentences(rng, main[-1]))
        linked = [o.links[r] for o in main for r in ("fundador", "director") if o.links[r].id in named_in(blocks)]
        describe_linked = lambda rng, person: person_sentences(rng, person, min_facts=1)[:1]
    if linked and rng.random() < 0.4:
        blocks.insert(rng.randint(0, len(blocks)), describe_linked(rng, rng.choice(linked)))
    for i, template in enumerate(rng.sample(DISTRACTORS, rng.randint(1, 2))):
        # Often first, so that "the first city/year/name of the paragraph" is often a distractor.
        where = 0 if i == 0 and rng.random() < 0.5 else rng.randint(0, len(blocks))
        blocks.insert(where, [distractor_sentence(rng, cast, template)])
    return blocks, cast, main


def named_in(blocks: list[list[tuple[str, dict]]]) -> list[str]:
    """Ids of the entities that planned sentences name."""
    ids = []
    for template, slots in sum(blocks, []):
        for slot in SLOT.findall(template):
            value = slots[slot]
            if isinstance(value, Span) and value.names and value.names not in ids:
                ids.append(value.names)
    return ids


def make_paragraph(rng: random.Random, kind: str) -> Paragraph:
    """A paragraph of `kind` within the length limits, with its answerable and unanswerable questions."""
    while True:   # redraw until the length fits; cheap, and keeps the limits exact
        blocks, cast, main = plan_paragraph(rng, kind)
        n_sentences = sum(len(b) for b in blocks)
        writer = ParagraphWriter({e.id: e.name for e in cast.entities.values()})
        for block in blocks:
            for template, slots in block:
                writer.write(template, slots)
        if MIN_SENTENCES <= n_sentences <= MAX_SENTENCES and MIN_WORDS <= len(writer.context.split()) <= MAX_WORDS:
            break
    stated = set(writer.answers)
    answerable = []
    for (eid, relation), mention in writer.answers.items():
        answerable.append((cast.entities[eid], relation, mention, False))
    # "¿Quién nació en Lima?" only when "Lima" appears once in the whole paragraph (likewise for jobs):
    # then exactly one person fits, and no distractor ("una bióloga de Quito ...") competes.
    mentions = [m["text"] for m in writer.entities]
    for (eid, relation), mention in writer.answers.items():
        if relation in PERSON_INVERSE_QUESTIONS and mentions.count(mention["text"]) == 1 and eid in writer.full_names:
            answerable.append((cast.entities[eid], relation, writer.full_names[eid], True))
    # Unanswerable questions, in three groups so that each kind is drawn equally often:
    # a missing fact of a main entity, any fact of an entity only mentioned in passing, and a look-alike
    # of a mentioned entity that the paragraph never names.
    main_ids = [e.id for e in main]
    missing = [(cast.entities[i], r) for i in main_ids for r in askable_relations(cast.entities[i], stated)]
    passing = [(cast.entities[i], r) for i in writer.mentioned if i not in main_ids
               for r in askable_relations(cast.entities[i], stated)]
    absent = [(e, r) for e in absent_lookalikes(rng, cast, writer.mentioned) for r in askable_relations(e, stated)]
    unanswerable = [g for g in (missing, passing, absent) if g]
    return Paragraph(writer.context, writer.entities, answerable, unanswerable)


def absent_lookalikes(rng: random.Random, cast: Cast, mentioned: list[str]) -> list[Entity]:
    """Entities that look like ones in the paragraph but are not in it: same first name with another
    surname ("Lucía Navarro" for "Lucía Gómez"), the same organisation name with another type
    ("Banco Altamira" for "Editorial Altamira"), and a locality with the same first words
    ("Santa Rosa del Mar" for "Santa Rosa del Río"). One of each kind that the paragraph mentions."""
    def mentioned_of(kind):
        return [cast.entities[i] for i in mentioned if cast.entities[i].kind == kind]
    lookalikes = []
    if people := mentioned_of("persona"):
        model = rng.choice(people)
        lookalikes.append(cast.person(female=model.female, given=model.name.split()[0]))
    if orgs := mentioned_of("organizacion"):
        model = rng.choice(orgs)
        lookalikes.append(cast.org(core=model.name[len(model.facts["tipo"]) + 1:], avoid_type=model.facts["tipo"]))
    if towns := mentioned_of("lugar"):
        model = rng.choice(towns)
        head = next(h for h in TOWN_HEADS if model.name.startswith(h + " "))
        lookalikes.append(cast.town([t for t in TOWNS if t.startswith(head + " ")]))
    return lookalikes


def write_question(rng: random.Random, entity: Entity, relation: str, mention: dict | None, inverse: bool) -> dict:
    """One SQuAD qa (id filled in later). `mention` is the answer span, None for an unanswerable question;
    `inverse` asks for the person instead ("¿Quién nació en Lima?")."""
    if inverse:
        template, qtype = rng.choice(PERSON_INVERSE_QUESTIONS[relation])
        question = template.format(ciudad=entity.facts["lugar_nacimiento"], prof=entity.facts["profesion"])
    else:
        template, qtype = rng.choice(question_templates(entity, relation))
        question = template.format(**question_words(entity))
    answers = [] if mention is None else [{"text": mention["text"], "answer_start": mention["start"]}]
    return {"id": "", "question": question, "answers": answers, "is_impossible": mention is None,
            "relation": relation, "question_type": qtype}


# ============================================================================= splits

KIND_TITLES = {"persona": "Biografías", "lugar": "Localidades", "organizacion": "Organizaciones"}
KIND_WEIGHTS = {"persona": 0.45, "lugar": 0.25, "organizacion": 0.30}


def split_seed(seed: int, split: str) -> int:
    """A stable per-split seed (Python's hash() of a str changes from run to run)."""
    return int.from_bytes(hashlib.sha256(f"{seed}:{split}".encode()).digest()[:8], "big")


def generate_split(n_questions: int, seed: int, split: str, impossible_fraction: float = 0.15) -> dict:
    """One SQuAD v2.0 dict with `n_questions` questions, of which about `impossible_fraction` are unanswerable.

    Paragraphs come in articles of PARAGRAPHS_PER_ARTICLE, each article about one kind of entity.
    Question ids are "synth-{split}-{number}", so they are unique across splits.
    """
    rng = random.Random(split_seed(seed, split))
    articles, n_done, n_impossible = [], 0, 0
    while n_done < n_questions:
        kind = rng.choices(list(KIND_WEIGHTS), weights=list(KIND_WEIGHTS.values()))[0]
        article = {"title": f"{KIND_TITLES[kind]} {len(articles) + 1:03d}", "paragraphs": []}
        for _ in range(PARAGRAPHS_PER_ARTICLE):
            if n_done >= n_questions:
                break
            par = make_paragraph(rng, kind)
            n_here = min(rng.randint(5, 7), n_questions - n_done)
            # Keep the running share of unanswerable questions on target (rather than flipping a coin per
            # question) so that even a small split has the requested fraction.
            n_unans = round(impossible_fraction * (n_done + n_here)) - n_impossible
            n_unans = max(0, min(n_unans, n_here - 1 if n_here > 1 else n_here))
            n_ans = min(n_here - n_unans, len(par.answerable))
            qas = [write_question(rng, *a) for a in rng.sample(par.answerable, n_ans)]
            asked = set()
            for _ in range(n_unans):
                group = rng.choice(par.unanswerable)
                entity, relation = rng.choice(group)
                if (entity.id, relation) not in asked:
                    asked.add((entity.id, relation))
                    qas.append(write_question(rng, entity, relation, None, False))
            rng.shuffle(qas)
            for qa in qas:
                qa["id"] = f"synth-{split}-{n_done:06d}"
                n_done += 1
                n_impossible += qa["is_impossible"]
            article["paragraphs"].append({"context": par.context, "entities": par.entities, "qas": qas})
        articles.append(article)
    return {"version": VERSION, "data": articles}


def generate_default(seed: int = 0) -> dict[str, dict]:
    """The kit's default splits: {"train": ..., "validation": ..., "test": ...}, each with its own seed."""
    return {split: generate_split(n, seed, split) for split, n in DEFAULT_SIZES.items()}


def to_json_bytes(squad: dict) -> bytes:
    return (json.dumps(squad, indent=1, ensure_ascii=False) + "\n").encode("utf-8")


def write_default_data(out_dir="data", seed: int = 0) -> dict[str, Path]:
    """Write train.json, validation.json and test.json into `out_dir`; return their paths by split."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {}
    for split, squad in generate_default(seed).items():
        paths[split] = out / f"{split}.json"
        paths[split].write_bytes(to_json_bytes(squad))
    return paths


def split_counts(squad: dict) -> dict:
    paragraphs = [p for a in squad["data"] for p in a["paragraphs"]]
    qas = [q for p in paragraphs for q in p["qas"]]
    return {"questions": len(qas), "unanswerable": sum(q["is_impossible"] for q in qas), "contexts": len(paragraphs)}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="Write the kit's synthetic Spanish SQuAD v2.0 data.")
    parser.add_argument("--out", default="data")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    for split, path in write_default_data(args.out, args.seed).items():
        counts = split_counts(json.loads(path.read_text(encoding="utf-8")))
        print(f"{split}: {counts['questions']} questions, {counts['unanswerable']} unanswerable, "
              f"{counts['contexts']} contexts -> {path}")
