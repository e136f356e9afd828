"""Draft the concept tables (emoji and clip art -> WordNet noun synset) for human review.

This is a maintainer tool, not part of the build: it proposes a synset per source item from the
item's name and category, applies the hand-written corrections in ``OVERRIDES`` (made while
reviewing its output), and writes ``concepts_emoji.csv`` and ``concepts_clipart.csv``. The builder
only ever reads the committed CSVs, so the mapping is reviewed once, never guessed at run time.

Usage: ``NLTK_DATA=.nltk_data python -m mllzoo_minizoo.world.draft_concepts EMOJI_JSON``
(``EMOJI_JSON``: ``package/emoji.json`` of npm ``emoji-datasource-twitter``).
"""

from __future__ import annotations

import csv
import json
import re
import sys
from pathlib import Path

from .sources import CLIPART_ROOT

HERE = Path(__file__).parent

# Which WordNet lexicographer files a category's concepts may come from (rejects e.g. "bat" the club
# for an animal emoji).
LEXNAMES = {
    "Animals & Nature": {"noun.animal", "noun.plant", "noun.object", "noun.phenomenon"},
    "Food & Drink": {"noun.food", "noun.plant", "noun.artifact"},
    "Travel & Places": {"noun.artifact", "noun.location", "noun.object", "noun.phenomenon"},
    "Activities": {"noun.act", "noun.artifact", "noun.event"},
    "Objects": {"noun.artifact", "noun.possession", "noun.communication"},
    "Smileys & Emotion": {
        "noun.feeling",
        "noun.communication",
        "noun.body",
        "noun.state",
        "noun.person",
    },
    "People & Body": {"noun.person", "noun.body", "noun.act", "noun.artifact"},
    "Symbols": {"noun.communication", "noun.artifact", "noun.shape"},
    "Flags": {"noun.location"},
}
# Drafted by hand only (see OVERRIDES): names that describe a drawing rather than name a thing.
HAND_ONLY = {"Smileys & Emotion", "Symbols"}
HAND_ONLY_SUBCATEGORIES = {
    "hand-fingers-open",
    "hand-fingers-closed",
    "hand-single-finger",
    "hands",
    "hand-prop",
    "person-gesture",
}
SKIP_SUBCATEGORIES = {
    "skin-tone",
    "keycap",
    "alphanum",
    "arrow",
    "av-symbol",
    "geometric",
    "math",
    "punctuation",
    "other-symbol",
    "gender",
    "zodiac",
    "time",
    "family",
    "flag",
    "hand-fingers-partial",
    "person-symbol",
}
STOP = {
    "face",
    "with",
    "and",
    "of",
    "symbol",
    "sign",
    "the",
    "a",
    "man",
    "woman",
    "person",
    "black",
    "white",
    "button",
    "mark",
    "open",
    "closed",
    "emoji",
    "modifier",
    "medium",
    "light",
    "dark",
}

# Corrections made while reviewing the draft: emoji unified code -> synset ("" drops the emoji).
# Faces, hands and hearts are mapped by hand only (their names describe a drawing, not a noun).
OVERRIDES: dict[str, str] = {
    # animals and plants
    "1F408-200D-2B1B": "cat.n.01",
    "1F40E": "horse.n.01",
    "1F994": "hedgehog.n.02",
    "1F432": "dragon.n.01",
    "1F409": "dragon.n.01",
    "1F42C": "dolphin.n.02",
    "1F41A": "seashell.n.01",
    "1FABC": "jellyfish.n.02",
    "1F426-200D-1F525": "phoenix.n.03",
    "1F99A": "peacock.n.02",
    "1F43E": "",
    "1F578-FE0F": "spider_web.n.01",
    "1F3F5-FE0F": "",
    # food
    "1F9C0": "cheese.n.01",
    "1F357": "drumstick.n.01",
    "1F352": "cherry.n.03",
    "1F330": "chestnut.n.03",
    "1F36D": "lollipop.n.02",
    "1F942": "glass.n.02",
    "1F37D-FE0F": "plate.n.04",
    "1F359": "",
    "1F96E": "cake.n.03",
    "1F370": "shortcake.n.01",
    "1F367": "",
    "1F36F": "honey.n.01",
    "1F9C9": "",
    "1F964": "",
    "1F37C": "bottle.n.03",
    "1FADA": "ginger.n.03",
    "1F34B-200D-1F7E9": "",
    "1F371": "",
    "1F961": "",
    "1F963": "bowl.n.01",
    "1F9C2": "saltshaker.n.01",
    # smileys: expressions
    "1F600": "smile.n.01",
    "1F603": "smiley.n.01",
    "1F604": "happiness.n.02",
    "1F601": "smile.n.01",
    "1F60A": "happiness.n.02",
    "263A-FE0F": "smile.n.01",
    "1F642": "smile.n.01",
    "1F606": "laugh.n.02",
    "1F923": "laugh.n.02",
    "1F602": "joy.n.01",
    "1F60C": "relief.n.01",
    "1F970": "love.n.01",
    "1F60D": "love.n.01",
    "1F618": "kiss.n.01",
    "1F617": "kiss.n.01",
    "1F619": "kiss.n.01",
    "1F61A": "kiss.n.01",
    "1F609": "wink.n.02",
    "1F610": "poker_face.n.01",
    "1F611": "poker_face.n.01",
    "1F60F": "smirk.n.01",
    "1F612": "displeasure.n.01",
    "1F644": "boredom.n.01",
    "1F614": "sadness.n.01",
    "1F61E": "disappointment.n.01",
    "1F61F": "worry.n.02",
    "1F641": "frown.n.01",
    "2639-FE0F": "frown.n.01",
    "1F622": "crying.n.01",
    "1F62D": "crying.n.01",
    "1F629": "fatigue.n.01",
    "1F62B": "fatigue.n.01",
    "1F620": "anger.n.01",
    "1F621": "fury.n.01",
    "1F92C": "anger.n.01",
    "1F62E": "surprise.n.01",
    "1F62F": "surprise.n.01",
    "1F632": "astonishment.n.01",
    "1F633": "embarrassment.n.01",
    "1F628": "fear.n.01",
    "1F631": "panic.n.01",
    "1F630": "anxiety.n.02",
    "1F627": "anguish.n.01",
    "1F922": "nausea.n.02",
    "1F92E": "vomit.n.03",
    "1F634": "sleep.n.01",
    "1F62A": "sleepiness.n.01",
    "1F971": "yawn.n.01",
    "1F924": "drool.n.02",
    "1F912": "fever.n.01",
    "1F915": "injury.n.01",
    "1F927": "sneeze.n.01",
    "1F637": "mask.n.04",
    "1F974": "dizziness.n.01",
    "1F917": "hug.n.01",
    "1F914": "thinking.n.01",
    "1F910": "silence.n.01",
    "1F92B": "silence.n.01",
    "1F913": "swot.n.01",
    "1F920": "cowboy.n.01",
    "1F921": "clown.n.02",
    "1F47B": "ghost.n.03",
    "1F47D": "extraterrestrial_being.n.01",
    "1F47E": "monster.n.01",
    "1F479": "ogre.n.02",
    "1F47A": "goblin.n.01",
    "1F47F": "devil.n.02",
    "1F608": "devil.n.02",
    "1F480": "skull.n.01",
    "2620-FE0F": "crossbones.n.01",
    "1F4A9": "fecal_matter.n.01",
    "1F916": "automaton.n.02",
    "1F63A": "cat.n.01",
    "1F638": "cat.n.01",
    "1F639": "cat.n.01",
    "1F63B": "cat.n.01",
    "1F63C": "cat.n.01",
    "1F63D": "cat.n.01",
    "1F640": "cat.n.01",
    "1F63F": "cat.n.01",
    "1F63E": "cat.n.01",
    "1F648": "monkey.n.01",
    "1F649": "monkey.n.01",
    "1F64A": "monkey.n.01",
    "1F48C": "love_letter.n.01",
    "1F494": "broken_heart.n.01",
    "2764-FE0F": "heart.n.07",
    "1F48B": "kiss.n.01",
    "1F4A5": "explosion.n.01",
    "1F4A6": "perspiration.n.01",
    "1F4A4": "sleep.n.01",
    # people and body
    "1F44D": "thumb.n.01",
    "270A": "fist.n.01",
    "1F91B": "fist.n.01",
    "1F91C": "fist.n.01",
    "1F44A": "punch.n.01",
    "1F44F": "applause.n.01",
    "1F91D": "handshake.n.01",
    "1F44B": "wave.n.05",
    "270B": "hand.n.01",
    "1F91A": "hand.n.01",
    "1F590-FE0F": "hand.n.01",
    "1F485": "nail_polish.n.01",
    "1F4AA": "biceps.n.01",
    "1F9BE": "prosthesis.n.01",
    "1F9BF": "prosthesis.n.01",
    "1F444": "mouth.n.02",
    "1F46E": "policeman.n.01",
    "1F46E-200D-2642-FE0F": "policeman.n.01",
    "1FAC5": "",
    "1F472": "",
    "1F470": "bride.n.01",
    "1F936": "santa_claus.n.01",
    "1F9DC-200D-2642-FE0F": "",
    "1F9DC": "mermaid.n.01",
    "1F46F": "",
    "1F46F-200D-2642-FE0F": "",
    "1F46F-200D-2640-FE0F": "",
    "1F9D6": "sauna.n.01",
    "1F9D6-200D-2642-FE0F": "sauna.n.01",
    "1F9D6-200D-2640-FE0F": "sauna.n.01",
    "1F3C3": "run.n.07",
    "1F3C3-200D-2642-FE0F": "run.n.07",
    "1F3C3-200D-2640-FE0F": "run.n.07",
    "1F6B6": "walk.n.01",
    "1F6A3": "rowing.n.01",
    "1F6A3-200D-2642-FE0F": "rowing.n.01",
    "1F6A3-200D-2640-FE0F": "rowing.n.01",
    "26F9-FE0F": "basketball.n.01",
    "26F9-FE0F-200D-2642-FE0F": "basketball.n.01",
    "26F9-FE0F-200D-2640-FE0F": "basketball.n.01",
    "1F3CB-FE0F": "weightlift.n.01",
    "1F3CB-FE0F-200D-2642-FE0F": "weightlift.n.01",
    "1F3CB-FE0F-200D-2640-FE0F": "weightlift.n.01",
    "1F6B4": "bicycling.n.01",
    "1F6B4-200D-2642-FE0F": "bicycling.n.01",
    "1F6B4-200D-2640-FE0F": "bicycling.n.01",
    "1F6B5": "bicycling.n.01",
    "1F6B5-200D-2642-FE0F": "bicycling.n.01",
    "1F6B5-200D-2640-FE0F": "bicycling.n.01",
    "1F938": "cartwheel.n.02",
    "1F938-200D-2642-FE0F": "cartwheel.n.02",
    "1F938-200D-2640-FE0F": "cartwheel.n.02",
    "1F93C": "wrestling.n.02",
    "1F93C-200D-2642-FE0F": "wrestling.n.02",
    "1F93C-200D-2640-FE0F": "wrestling.n.02",
    "1F93E": "handball.n.02",
    "1F93E-200D-2642-FE0F": "handball.n.02",
    "1F93E-200D-2640-FE0F": "handball.n.02",
    "1F939": "juggle.n.02",
    "1F939-200D-2642-FE0F": "juggle.n.02",
    "1F939-200D-2640-FE0F": "juggle.n.02",
    "1F9D8": "yoga.n.02",
    "1F9D8-200D-2642-FE0F": "yoga.n.02",
    "1F9D8-200D-2640-FE0F": "yoga.n.02",
    "1F3CC-FE0F": "golf.n.01",
    "1F3CC-FE0F-200D-2642-FE0F": "golf.n.01",
    "1F3CC-FE0F-200D-2640-FE0F": "golf.n.01",
    "1F3C4": "surfing.n.01",
    "1F3CA": "swimming.n.01",
    "1F6CC": "bed.n.01",
    "1F574-FE0F": "levitation.n.01",
    "1F647": "bow.n.06",
    "1F647-200D-2642-FE0F": "bow.n.06",
    "1F647-200D-2640-FE0F": "bow.n.06",
    "1F481": "",
    "1F481-200D-2642-FE0F": "",
    "1F481-200D-2640-FE0F": "",
    "1F64B": "",
    "1F64B-200D-2642-FE0F": "",
    "1F64B-200D-2640-FE0F": "",
    "1F645": "",
    "1F646": "",
    "1F926": "",
    "1F471": "",
    "1F935": "dinner_jacket.n.01",
    # travel and places
    "1F30E": "earth.n.01",
    "1F310": "globe.n.03",
    "1F30B": "volcano.n.02",
    "1F3D6-FE0F": "beach.n.01",
    "1FAB5": "wood.n.01",
    "1F6D6": "hovel.n.01",
    "1F3E1": "house.n.01",
    "1F3E2": "office_building.n.01",
    "1F3E3": "post_office.n.02",
    "1F3E4": "post_office.n.02",
    "1F3E6": "bank.n.09",
    "1F3EF": "castle.n.02",
    "1F3F0": "castle.n.02",
    "1F3D7-FE0F": "construction.n.01",
    "1F303": "night.n.01",
    "1F3D9-FE0F": "city.n.01",
    "1F306": "dusk.n.01",
    "1F307": "sunset.n.01",
    "2668-FE0F": "hot_spring.n.01",
    "1F3A0": "carousel.n.02",
    "1F488": "",
    "1F683": "passenger_car.n.01",
    "1F685": "train.n.01",
    "1F688": "tramway.n.01",
    "1F68B": "streetcar.n.01",
    "1F6F4": "motor_scooter.n.01",
    "1F6E4-FE0F": "railroad_track.n.01",
    "1F6E2-FE0F": "drum.n.04",
    "1F6A8": "",
    "1F6A6": "traffic_light.n.01",
    "1F6A7": "",
    "1F6DF": "life_buoy.n.01",
    "26F5": "sailboat.n.01",
    "1F6E5-FE0F": "motorboat.n.01",
    "1F6A0": "cable_car.n.01",
    "1F6F8": "flying_saucer.n.01",
    "1F4BA": "",
    "2600-FE0F": "sun.n.01",
    "2614": "umbrella.n.01",
    "26F1-FE0F": "parasol.n.01",
    "26C4": "snowman.n.01",
    "1F525": "fire.n.01",
    "1F30A": "wave.n.01",
    "2728": "",
    "1F381": "present.n.02",
    "1F389": "",
    "1F38A": "confetti.n.01",
    "1F38F": "",
    "1F391": "",
    "1F380": "ribbon.n.04",
    "1F397-FE0F": "ribbon.n.04",
    "1F39F-FE0F": "ticket.n.01",
    "1F3C5": "medal.n.01",
    "1F947": "gold_medal.n.01",
    "1F948": "silver_medal.n.01",
    "1F949": "bronze_medal.n.01",
    "26BD": "soccer_ball.n.01",
    "26BE": "baseball.n.02",
    "1F3C0": "basketball.n.02",
    "1F3D0": "volleyball.n.02",
    "1F3C8": "football.n.02",
    "1F3C9": "rugby_ball.n.01",
    "1F3BE": "tennis.n.01",
    "1F94F": "frisbee.n.01",
    "1F3CF": "cricket.n.02",
    "1F3D1": "field_hockey.n.01",
    "1F3D2": "ice_hockey.n.01",
    "1F3D3": "table_tennis.n.01",
    "1F94B": "karate.n.01",
    "1F945": "goal.n.03",
    "1F3A3": "fishing_rod.n.01",
    "1F93F": "goggles.n.01",
    "1F3BD": "",
    "1F94C": "curling.n.01",
    "1F3AF": "bull's_eye.n.02",
    "1F52B": "pistol.n.01",
    "1F579-FE0F": "joystick.n.01",
    "1F9E9": "jigsaw_puzzle.n.01",
    "1FAA9": "",
    "2660-FE0F": "spade.n.01",
    "2665-FE0F": "",
    "2663-FE0F": "",
    "1F3AD": "mask.n.01",
    "1F3A8": "palette.n.02",
    "1F9F6": "thread.n.01",
    # objects
    "1F9BA": "life_jacket.n.01",
    "1F455": "jersey.n.03",
    "1F9E4": "glove.n.02",
    "1F45A": "",
    "1F45B": "purse.n.01",
    "1F45C": "bag.n.04",
    "1FAAE": "",
    "1F451": "crown.n.04",
    "1F48D": "ring.n.08",
    "1F507": "loudspeaker.n.01",
    "1F509": "loudspeaker.n.01",
    "1F50A": "loudspeaker.n.01",
    "1F4EF": "",
    "1F515": "bell.n.01",
    "1F3B5": "note.n.03",
    "1F3B6": "note.n.03",
    "1F39A-FE0F": "",
    "1F4FB": "radio.n.03",
    "1F3BA": "trumpet.n.01",
    "1F941": "drum.n.01",
    "1F4F2": "cellular_telephone.n.01",
    "1F4ED": "mailbox.n.01",
    "1F5F3-FE0F": "ballot_box.n.01",
    "1F5C2-FE0F": "",
    "1F5D2-FE0F": "notebook.n.01",
    "1F4CF": "rule.n.12",
    "1F5C3-FE0F": "",
    "1F5C4-FE0F": "file.n.03",
    "1F50F": "lock.n.01",
    "1F510": "lock.n.01",
    "1F528": "hammer.n.02",
    "26CF-FE0F": "pick.n.07",
    "2692-FE0F": "",
    "1F6E0-FE0F": "",
    "2694-FE0F": "sword.n.01",
    "1FA9A": "saw.n.02",
    "2696-FE0F": "scale.n.07",
    "1F517": "",
    "26D3-FE0F-200D-1F4A5": "chain.n.03",
    "26D3-FE0F": "chain.n.03",
    "1F9EC": "deoxyribonucleic_acid.n.01",
    "1FA78": "blood.n.01",
    "1F6CB-FE0F": "sofa.n.01",
    "1FAA4": "mousetrap.n.01",
    "1F9F4": "lotion.n.02",
    "1F9FB": "toilet_tissue.n.01",
    "1FAE7": "bubble.n.01",
    "1F6D2": "handcart.n.01",
    "1FAA6": "gravestone.n.01",
    "1FAAA": "identity_card.n.01",
    "1F3E7": "automatic_teller.n.01",
}
CLIPART_LEXNAMES = {
    "animals": {"noun.animal"},
    "food": {"noun.food", "noun.plant"},
    "plants": {"noun.plant"},
    "transportation/vehicles": {"noun.artifact"},
    "transportation/boating": {"noun.artifact"},
    "recreation/sports": {"noun.artifact", "noun.act"},
    "recreation/music": {"noun.artifact"},
    "recreation/toys": {"noun.artifact"},
    "tools": {"noun.artifact"},
    "buildings": {"noun.artifact"},
    "office": {"noun.artifact"},
    "electronics": {"noun.artifact"},
    "people/clothing": {"noun.artifact"},
    "signs_and_symbols/flags": {"noun.location"},
    "signs_and_symbols/weather": {"noun.phenomenon"},
}
CLIPART_OVERRIDES: dict[str, str] = {}
# Review of the clip-art draft, per proposed synset: a better sense, or "" where the file name's first
# word is not the picture's subject ("bullet hole", "giraffe cichlid", "road runner", ...).
CLIPART_REMAP: dict[str, str] = {
    "aquila.n.03": "eagle.n.01",
    "barrel.n.01": "barrel.n.02",
    "cell.n.01": "cellular_telephone.n.01",
    "cherry.n.01": "cherry.n.03",
    "compact.n.01": "compact_disk.n.01",
    "dolphinfish.n.02": "dolphin.n.02",
    "dragon.n.04": "dragon.n.01",
    "electric.n.01": "electric_guitar.n.01",
    "emperor.n.03": "emperor_penguin.n.01",
    "hammer.n.01": "hammer.n.02",
    "horn.n.01": "french_horn.n.01",
    "moonlight.n.01": "moon.n.01",
    "plate.n.07": "plate.n.04",
    "sunlight.n.01": "sun.n.01",
}
CLIPART_DROP = set(
    """
accelerator.n.01 arrow.n.02 baby.n.06 bass.n.07 bend.n.03 blue.n.02 blue.n.07 bullet.n.01 burner.n.01
chicken.n.01 cleansing_agent.n.01 cone.n.03 connection.n.03 corn.n.01 cube.n.05 display.n.03 elevator.n.01
flag.n.07 foundation.n.03 frosting.n.01 fusillade.n.01 future.n.03 garlic.n.01 giraffe.n.01 glass.n.02
glossy.n.02 greens.n.01 hash.n.01 head.n.02 heel.n.01 internet.n.01 ironing.n.01 jean.n.01 k.n.07 kat.n.01
laser.n.01 lash.n.02 magnolia.n.01 mail.n.03 main.n.02 mannequin.n.02 mix.n.01 mobile.n.03 newspaper.n.03
onion.n.01 orange.n.01 panel.n.01 patty.n.01 pink.n.02 play.n.03 pocket.n.01 point.n.15 potato.n.01 quay.n.01
rings.n.01 road.n.01 roll_of_tobacco.n.01 roller.n.01 rubber_eraser.n.01 rule.n.12 satellite.n.01 simple.n.01
spider.n.03 sport.n.01 spread.n.05 square.n.07 staff.n.02 stamp.n.07 straw.n.04 structure.n.01 table.n.02
tack.n.02 television.n.02 video_recording.n.01 walrus.n.01 water_system.n.02 wing.n.01 wing.n.02 pepper.n.01
mortar.n.01 menu.n.02 picnic.n.03 breakfast.n.01 food.n.02 intersection.n.02 cartridge_holder.n.01 tool.n.01
""".split()
)


COUNTRY_WORDS = re.compile(
    r"republic|kingdom|monarchy|country|nation|island|principality|territory|"
    r"state|sultanate|emirate|commonwealth|colony|dependency|archipelago"
)


def _synset(candidates: list[str], allowed: set[str]):
    from nltk.corpus import wordnet as wn

    for cand in candidates:
        cand = re.sub(
            r"[^a-z0-9_\-']", "", cand.strip().lower().replace(" ", "_").replace("-", "_")
        )
        if not cand or cand in STOP:
            continue
        for syn in wn.synsets(cand, wn.NOUN):
            if syn.lexname() not in allowed:
                continue
            if allowed == {"noun.location"} and not COUNTRY_WORDS.search(syn.definition()):
                continue  # a flag names a country or territory, not a volcano or a city
            return syn
    return None


def emoji_candidates(entry: dict) -> list[str]:
    name = entry["name"].lower()
    if entry["category"] == "Flags":
        return [re.sub(r"^flag:\s*|\s*flag$", "", name)]
    words = [w for w in re.split(r"[\s:,]+", name) if w]
    core = [w for w in words if w not in STOP]
    cands = [s.replace("_", " ") for s in entry["short_names"]] + [name, " ".join(core)]
    if len(core) >= 2:
        cands += [" ".join(core[-2:])]
    cands += core[::-1]
    return cands


def draft_emoji(emoji_json: Path) -> list[dict]:
    rows = []
    for entry in sorted(json.loads(emoji_json.read_text()), key=lambda e: e["sort_order"]):
        if entry["subcategory"] in SKIP_SUBCATEGORIES or not entry.get("has_img_twitter"):
            continue
        code = entry["unified"]
        if "facing right" in entry["name"].lower():
            continue  # a mirrored duplicate of the left-facing emoji
        if code in OVERRIDES:
            synset = OVERRIDES[code]
        elif entry["category"] in HAND_ONLY or entry["subcategory"] in HAND_ONLY_SUBCATEGORIES:
            synset = ""
        else:
            syn = _synset(emoji_candidates(entry), LEXNAMES.get(entry["category"], set()))
            synset = syn.name() if syn else ""
        if not synset:
            continue
        rows.append(
            {
                "code": code,
                "name": entry["name"].lower(),
                "category": entry["category"],
                "subcategory": entry["subcategory"],
                "synset": synset,
            }
        )
    return rows


def clipart_candidates(path: Path) -> list[str]:
    stem = re.sub(r"[_\-]?\d+$", "", path.stem.lower())
    words = [w for w in re.split(r"[_\-\s]+", stem) if w.isalpha() and len(w) > 2]
    return words[:2]  # the subject comes first; later words are mostly the artist's name


def draft_clipart(root: Path = CLIPART_ROOT) -> list[dict]:
    rows = []
    for folder, allowed in CLIPART_LEXNAMES.items():
        for path in sorted((root / folder).rglob("*.png")):
            key = str(path.relative_to(root))
            if folder.endswith("flags") and (
                len(path.relative_to(root / folder).parts) > 2 or "historic" in key
            ):
                continue  # regional and historic flags would be filed under their country
            if folder.endswith("flags"):
                cands = [re.sub(r"[_\-]?(\d+|flag|plain)$", "", path.stem.lower()).strip("_")]
                syn = _synset(cands, allowed)
                if syn:
                    rows.append({"path": key, "folder": folder, "synset": syn.name()})
                continue
            if key in CLIPART_OVERRIDES:
                synset = CLIPART_OVERRIDES[key]
            else:
                cands = clipart_candidates(path)
                syn = _synset(cands[:1], allowed) or _synset(cands[1:], allowed)
                synset = syn.name() if syn else ""
                synset = "" if synset in CLIPART_DROP else CLIPART_REMAP.get(synset, synset)
            if synset:
                rows.append({"path": key, "folder": folder, "synset": synset})
    return rows


def write_csv(path: Path, rows: list[dict]) -> None:
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


if __name__ == "__main__":
    write_csv(HERE / "concepts_emoji.csv", draft_emoji(Path(sys.argv[1])))
    write_csv(HERE / "concepts_clipart.csv", draft_clipart())
