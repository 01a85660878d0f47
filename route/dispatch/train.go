package dispatch

import (
	"context"
	"fmt"
	"hash/fnv"
	"log/slog"
	"slices"
	"time"

	"github.com/switchboard-inbox/switchboard/route"
)

// Trainer is where training reads labelled conversations and keeps the
// model (package inbox).
type Trainer interface {
	ResolvedTopics(ctx context.Context, limit int) ([]route.Labeled, error)
	SaveClassifier(ctx context.Context, model []byte, accuracy float64, n int) (string, error)
}

// MinTrainingSamples is the fewest labelled conversations Train accepts.
const MinTrainingSamples = 20

// Train trains a topic classifier on resolved conversations that have a
// topic: route.Train on 80% of them, route.Evaluate on the other 20%, then
// saves the model with its accuracy; running dispatchers pick it up at
// their next pass. n is the number of training examples. The split is a
// hash of each text, so it is the same from run to run on the same data.
func Train(ctx context.Context, db Trainer) (accuracy float64, n int, err error) {
	samples, err := db.ResolvedTopics(ctx, 50000)
	if err != nil {
		return 0, 0, fmt.Errorf("dispatch: train: %w", err)
	}
	if len(samples) < MinTrainingSamples {
		return 0, 0, fmt.Errorf("dispatch: train: %d resolved conversations with a topic, need at least %d", len(samples), MinTrainingSamples)
	}
	train, test := split(samples)
	c := route.Train(train)
	accuracy = route.Evaluate(c, test)
	model, err := c.MarshalBinary()
	if err != nil {
		return 0, 0, fmt.Errorf("dispatch: train: %w", err)
	}
	if _, err := db.SaveClassifier(ctx, model, accuracy, len(train)); err != nil {
		return 0, 0, fmt.Errorf("dispatch: train: %w", err)
	}
	return accuracy, len(train), nil
}

// split puts one document in five in the test set, chosen by a hash of
// its text and position.
func split(docs []route.Labeled) (train, test []route.Labeled) {
	type keyed struct {
		h uint64
		d route.Labeled
	}
	ks := make([]keyed, len(docs))
	for i, d := range docs {
		h := fnv.New64a()
		fmt.Fprintf(h, "%d\x00%s\x00%s", i, d.Topic, d.Text)
		ks[i] = keyed{h.Sum64(), d}
	}
	slices.SortFunc(ks, func(a, b keyed) int {
		switch {
		case a.h < b.h:
			return -1
		case a.h > b.h:
			return 1
		}
		return 0
	})
	cut := len(ks) * 4 / 5
	for i, k := range ks {
		if i < cut {
			train = append(train, k.d)
		} else {
			test = append(test, k.d)
		}
	}
	return train, test
}

// Retrain trains the classifier every interval until ctx ends; running
// dispatchers pick up each new model at their next pass. Too little
// labelled history is not an error worth more than a debug line.
func Retrain(ctx context.Context, db Trainer, every time.Duration, log *slog.Logger) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		acc, n, err := Train(ctx, db)
		if err != nil {
			log.Debug("routing: classifier not retrained", "err", err)
			continue
		}
		log.Info("routing: classifier retrained", "examples", n, "held_out_accuracy", fmt.Sprintf("%.3f", acc))
	}
}
