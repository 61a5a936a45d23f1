"""Train a digit classifier: the feature extractors behind the offline metrics.

    python recipes/classifier.py                     # train, evaluate, export exported/classifier/
    python recipes/classifier.py --ship              # ... and replace zoo's classifier in zoo/weights/
    python recipes/classifier.py --filters 16 32 64 --hidden 64 --seed 1 --ship second_mnist_classifier
                                                     # the second one, built and trained apart
"""

from zoo import recipe
from zoo.metrics import extractors
from zoo.models.classifier import Classifier

MODEL = Classifier


def flags(argv=None):
    p = recipe.parser(MODEL, argv, description=__doc__.splitlines()[0])
    p.add_argument("--ship", nargs="?", const="zoo_mnist_classifier", choices=list(extractors.CLASSIFIERS),
                   help="write the trained weights into the package (zoo/weights/) as this extractor")
    return p


if __name__ == "__main__":
    result = recipe.main(MODEL, flags=flags())
    if result.args.ship:
        path = extractors.ship_classifier(result.model.network, result.model.config.to_dict(), result.card,
                                          result.args.ship)
        print(f"zoo: shipped the classifier weights to {path}")
