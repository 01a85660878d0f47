package blob
import ("context";"testing";"fmt";"github.com/minio/minio-go/v7")
func TestDbg(t *testing.T){
 s, err := NewS3(context.Background(), S3URLForTest(t)); if err!=nil{t.Fatal(err)}
 s.bucket="nonexistent-bucket-xyz"
 o, err := s.client.GetObject(context.Background(), s.bucket, "k", minio.GetObjectOptions{})
 fmt.Printf("%v\n", err)
 _, err = o.Stat()
 fmt.Printf("%#v\n", err)
 err = s.client.RemoveObject(context.Background(), s.bucket, "k", minio.RemoveObjectOptions{})
 fmt.Printf("%#v\n", err)
}
