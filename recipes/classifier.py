"""Train the zoo MNIST classifier, the feature extractor behind the offline metrics.

    python recipes/classifier.py            # train, evaluate, export exported/classifier/
    python recipes/classifier.py --ship     # ... and replace the weights shipped in zoo/weights/
"""

from zoo import recipe
from zoo.metrics import extractors
from zoo.models.classifier import Classifier

MODEL = Classifier


def flags(argv=None):
    p = recipe.parser(MODEL, argv, description=__doc__.splitlines()[0])
    p.add_argument("--ship", action="store_true", help="write the trained weights into the package (zoo/weights/)")
    return p


if __name__ == "__main__":
    result = recipe.main(MODEL, flags=flags())
    if result.args.ship:
        path = extractors.ship_classifier(result.model.network, result.model.config.to_dict(), result.card)
        print(f"zoo: shipped the classifier weights to {path}")
