"""Train the zoo MNIST classifier, the feature extractor behind the offline metrics.

    python recipes/classifier.py            # train, evaluate, export exported/classifier/
    python recipes/classifier.py --ship     # ... and replace the weights shipped in zoo/weights/
"""

from zoo import recipe
from zoo.metrics import extractors
from zoo.models.classifier import Classifier, ClassifierConfig

flags = recipe.parser(__doc__.splitlines()[0], epochs=40, batch_size=64, learning_rate=1e-3,
                       jit_compile=False)  # XLA cannot compile the image-augmentation transforms
flags.add_argument("--ship", action="store_true",
                   help="write the trained weights into the package (zoo/weights/)")


def build(args, info):
    return Classifier(ClassifierConfig(image_shape=info.image_shape, num_classes=info.num_classes,
                                       seed=args.seed), name="classifier")


if __name__ == "__main__":
    result = recipe.run("classifier", build, flags)
    if flags.parse_args().ship:
        path = extractors.ship_classifier(result.model, result.card)
        print(f"zoo: shipped the classifier weights to {path}")
